"""A served berth killed with SIGKILL and restarted loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.support.server import BerthServer
from tests.support.tasks import (
    container,
    create,
    engine_containers,
    path,
    register,
    task_body,
)


@pytest.fixture
def server(tmp_path: Path, host_id: str) -> Iterator[BerthServer]:
    """``berth serve`` in a subprocess on a SQLite file of the test's own."""
    env = {
        "BERTH_DATABASE_URL": f"sqlite:///{tmp_path / 'berth.db'}",
        "BERTH_STATE_DIR": str(tmp_path / "state"),
        "BERTH_HOST_ID": host_id,
    }
    served = BerthServer(env, tmp_path / "berth.log").start()
    yield served
    served.kill()


def identities(http: httpx.Client, task_id: str) -> dict[str, Any]:
    """Each container's status, Docker name and Docker ID, by name."""
    task = http.get(f"/v1/tasks/{task_id}").json()
    return {
        c["name"]: (c["status"], c["docker_name"], c["docker_id"])
        for c in task["containers"]
    }


def test_kill_9_and_restart_lose_no_name_and_no_id(
    server: BerthServer, docker_api: docker.APIClient
) -> None:
    """Names and IDs read back the same after a crash; creates stay single."""
    body = task_body(
        container("db"), container("app", links=["db"]), container("later")
    )
    with server.client() as http:
        task_id = register(http, body)
        create(http, task_id, "db")
        create(http, task_id, "app")
        # A link needs its target running before the linking one starts.
        http.post(path(task_id, "db", "start"))
        http.post(path(task_id, "app", "start"))
        before = identities(http, task_id)

    server.kill()
    server.start()

    with server.client() as http:
        after = identities(http, task_id)
        again = http.post(path(task_id, "app", "create"))
        later = http.post(path(task_id, "later", "create"))

    assert after == before
    assert before["app"][0] == "RUNNING"
    assert before["later"] == ("NONE", None, None)
    assert again.status_code == 200
    assert again.json()["docker_id"] == before["app"][2]
    assert later.status_code == 201
    for name in ("db", "app", "later"):
        assert len(engine_containers(docker_api, body["arn"], name)) == 1
