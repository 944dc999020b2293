"""A served berth that dies at the create protocol's weakest points, for
real (``BERTH_CRASH_AT``), and what it makes of that when it comes back."""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import httpx
import pytest

from app.config import Settings
from tests.conftest import TEST_IMAGE, unique_arn
from tests.support.recovery import (
    eventually,
    log_path,
    on_engine,
    our_labels,
    server_env,
    task_body,
)
from tests.support.server import BerthServer

# Restarted with these, berth leaves a crashed row exactly as it was, so
# that the create's own branch is what handles it, not recovery.
NO_RECOVERY = {"BERTH_EVENTS": "false", "BERTH_RECONCILE_ON_START": "false"}


@pytest.fixture
def server(settings: Settings) -> Iterator[BerthServer]:
    berth = BerthServer(server_env(settings), log_path(settings))
    yield berth
    berth.kill()


def _crash_during_create(server: BerthServer, point: str) -> tuple[str, str]:
    """Register a task, create its container, die at ``point``.

    Returns the task's ID and its ARN.
    """
    arn = unique_arn()
    server.start(BERTH_CRASH_AT=point)
    with server.client() as http:
        task_id = http.post("/v1/tasks", json=task_body(arn)).json()["id"]
        with pytest.raises(httpx.TransportError):
            http.post(f"/v1/tasks/{task_id}/containers/main/create")
    assert server.process is not None
    assert server.process.wait(10) == 137
    return task_id, arn


def _row(http: httpx.Client, task_id: str) -> dict:
    return dict(http.get(f"/v1/tasks/{task_id}/containers/main").json())


def _settled(http: httpx.Client, task_id: str) -> dict | None:
    """The row once start-up recovery has dealt with it."""
    row = _row(http, task_id)
    return row if row["status"] != "CREATING" else None


def _logged(server: BerthServer, event: str) -> list[dict]:
    lines = [json.loads(x) for x in server.output().splitlines() if x.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def test_a_crash_after_the_name_commit_is_retried_under_that_name(
    server: BerthServer, docker_api: docker.APIClient, host_id: str
) -> None:
    """The stored name survives; recovery makes it retryable; one container."""
    task_id, arn = _crash_during_create(server, "after-name-commit")

    server.start()
    with server.client() as http:
        recovered = eventually(lambda: _settled(http, task_id), 10)
        retried = http.post(f"/v1/tasks/{task_id}/containers/main/create")

    assert recovered["docker_name"] and recovered["status"] == "NONE"
    assert retried.status_code == 201
    assert retried.json()["docker_name"] == recovered["docker_name"]
    assert [c["Id"] for c in on_engine(docker_api, host_id, arn)] == [
        retried.json()["docker_id"]
    ]


def test_our_container_under_the_stored_name_is_adopted_on_409(
    server: BerthServer, docker_api: docker.APIClient, host_id: str
) -> None:
    """Ours under the name after the crash: the retry's 409 adopts it."""
    task_id, arn = _crash_during_create(server, "after-name-commit")
    server.start(**NO_RECOVERY)
    with server.client() as http:
        stored = _row(http, task_id)["docker_name"]
        ours = docker_api.create_container(
            TEST_IMAGE,
            ["sleep", "300"],
            name=stored,
            labels=our_labels(arn, "main", host_id),
        )["Id"]

        retried = http.post(f"/v1/tasks/{task_id}/containers/main/create")

    assert retried.status_code == 201, retried.text
    assert retried.json()["docker_id"] == ours
    assert [c["Id"] for c in on_engine(docker_api, host_id, arn)] == [ours]
    adopted = _logged(server, "container.adopted")
    assert [a["reason"] for a in adopted] == ["name_in_use"]


def test_a_strangers_container_under_the_stored_name_is_left_alone(
    server: BerthServer, docker_api: docker.APIClient, host_id: str
) -> None:
    """409 with foreign labels: NameConflictError, the stranger untouched,
    and still untouched once the task is deleted."""
    task_id, arn = _crash_during_create(server, "after-name-commit")
    server.start(**NO_RECOVERY)
    with server.client() as http:
        stored = _row(http, task_id)["docker_name"]
        stranger = docker_api.create_container(
            TEST_IMAGE,
            ["sleep", "300"],
            name=stored,
            labels={"io.berth.host-id": host_id, "owner": "someone-else"},
        )["Id"]
        docker_api.start(stranger)

        refused = http.post(f"/v1/tasks/{task_id}/containers/main/create")
        after = _row(http, task_id)
        deleted = http.delete(f"/v1/tasks/{task_id}", params={"timeout": 0})

    assert refused.status_code == 409
    assert refused.json()["error_name"] == "NameConflictError"
    assert after["docker_id"] is None
    assert deleted.status_code == 204
    state = docker_api.inspect_container(stranger)
    assert state["State"]["Running"] and state["Name"] == "/" + stored
    assert on_engine(docker_api, host_id, arn) == []


def test_an_id_docker_returned_before_a_crash_is_adopted_at_start_up(
    server: BerthServer, docker_api: docker.APIClient, host_id: str
) -> None:
    """Killed after Docker answered: start-up recovery stores that ID."""
    task_id, arn = _crash_during_create(server, "after-docker-create")
    made = on_engine(docker_api, host_id, arn)

    server.start()
    with server.client() as http:
        recovered = eventually(lambda: _settled(http, task_id), 10)
        retried = http.post(f"/v1/tasks/{task_id}/containers/main/create")

    assert len(made) == 1
    assert recovered["docker_id"] == made[0]["Id"]
    assert recovered["status"] == "CREATED"
    assert retried.status_code == 200
    assert retried.json()["docker_id"] == made[0]["Id"]
    assert len(on_engine(docker_api, host_id, arn)) == 1
