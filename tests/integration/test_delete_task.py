"""Deleting a task removes its containers in every state, and its rows."""

from __future__ import annotations

import docker
import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import TEST_IMAGE, unique_arn
from tests.support.recovery import (
    container,
    log_path,
    on_engine,
    our_labels,
    server_env,
    task_body,
)
from tests.support.server import BerthServer


def test_every_state_is_removed_with_the_task(
    settings: Settings, docker_api: docker.APIClient, host_id: str
) -> None:
    """Created, running, named-only after a crash, never created: all gone."""
    arn = unique_arn()
    body = task_body(
        arn, container("named"), container("made"), container("up"), container("no")
    )
    server = BerthServer(server_env(settings), log_path(settings))
    try:
        server.start(BERTH_CRASH_AT="after-name-commit")
        with server.client() as http:
            task_id = http.post("/v1/tasks", json=body).json()["id"]
            url = f"/v1/tasks/{task_id}/containers"
            with pytest.raises(httpx.TransportError):
                http.post(f"{url}/named/create")

        server.start(BERTH_EVENTS="false", BERTH_RECONCILE_ON_START="false")
        with server.client() as http:
            stored = http.get(f"{url}/named").json()
            # The create that was in flight lands after the crash: a
            # container under the stored name that no row has an ID for.
            docker_api.create_container(
                TEST_IMAGE,
                ["sleep", "300"],
                name=stored["docker_name"],
                labels=our_labels(arn, "named", host_id),
            )
            http.post(f"{url}/made/create")
            http.post(f"{url}/up/start")
            before = len(on_engine(docker_api, host_id, arn))

            deleted = http.delete(f"/v1/tasks/{task_id}", params={"timeout": 0})
            after = http.get(f"/v1/tasks/{task_id}")
    finally:
        server.kill()

    assert stored["docker_id"] is None and before == 3
    assert deleted.status_code == 204, deleted.text
    assert after.status_code == 404
    assert on_engine(docker_api, host_id, arn) == []


def test_a_container_that_vanished_is_deleted_all_the_same(
    client: TestClient, docker_api: docker.APIClient, host_id: str
) -> None:
    """Removed behind berth's back: DELETE succeeds, then the task goes."""
    arn = unique_arn()
    task_id = client.post("/v1/tasks", json=task_body(arn)).json()["id"]
    url = f"/v1/tasks/{task_id}/containers/main"
    made = client.post(f"{url}/create").json()
    docker_api.remove_container(made["docker_id"], force=True)

    removed = client.delete(url)
    deleted = client.delete(f"/v1/tasks/{task_id}")

    assert removed.status_code == 200 and removed.json()["status"] == "REMOVED"
    assert deleted.status_code == 204
    assert client.get(f"/v1/tasks/{task_id}").status_code == 404


def test_a_stray_with_the_tasks_labels_goes_with_the_task(
    client: TestClient, docker_api: docker.APIClient, host_id: str
) -> None:
    """A duplicate no row points at is still removed with its task."""
    arn = unique_arn()
    task_id = client.post("/v1/tasks", json=task_body(arn)).json()["id"]
    client.post(f"/v1/tasks/{task_id}/containers/main/create")
    docker_api.create_container(
        TEST_IMAGE, ["sleep", "300"], labels=our_labels(arn, "main", host_id)
    )

    deleted = client.delete(f"/v1/tasks/{task_id}", params={"timeout": 0})

    assert deleted.status_code == 204
    assert on_engine(docker_api, host_id, arn) == []
