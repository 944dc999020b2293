"""Live state from the engine's events, on a real engine: nobody asks for a
refresh, and the rows move anyway."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade
from tests.conftest import unique_arn
from tests.support.engine import PrivateEngine
from tests.support.recovery import container, eventually, task_body

MIB = 1024 * 1024


def _started(client: TestClient, body: dict) -> tuple[str, dict[str, dict]]:
    """Register, create and start every container; wait for the watcher."""
    assert client.app.state.watcher.connected.wait(10)
    task = client.post("/v1/tasks", json=body).json()
    views = {}
    for spec in body["containers"]:
        url = f"/v1/tasks/{task['id']}/containers/{spec['name']}"
        started = client.post(url + "/start")
        assert started.status_code == 200, started.text
        views[spec["name"]] = started.json()
    return task["id"], views


def _row(client: TestClient, task_id: str, name: str) -> dict:
    return client.get(f"/v1/tasks/{task_id}/containers/{name}").json()


def test_a_docker_kill_is_stopped_with_137_within_three_seconds(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """``docker kill``: STOPPED and exit code 137, with no refresh asked."""
    task_id, views = _started(client, task_body(unique_arn()))

    killed_at = time.monotonic()
    docker_api.kill(views["main"]["docker_id"])
    row = eventually(
        lambda: (r := _row(client, task_id, "main"))["status"] == "STOPPED" and r,
        3,
    )

    assert time.monotonic() - killed_at < 3
    assert row["exit_code"] == 137


def test_an_oom_kill_is_reported_without_a_refresh(client: TestClient) -> None:
    """Out of memory a second after start: STOPPED, OutOfMemoryError."""
    hog = container("hog", "sh", "-c", "sleep 1; tail /dev/zero")
    hog["memory_mib"] = 8
    hog["docker_config"] = {"host_config": {"MemorySwap": 8 * MIB}}
    task_id, views = _started(client, task_body(unique_arn(), hog))

    row = eventually(
        lambda: (r := _row(client, task_id, "hog"))["status"] == "STOPPED" and r,
        10,
    )

    assert views["hog"]["status"] == "RUNNING"
    assert row["oom_killed"] is True
    assert row["error"]["name"] == "OutOfMemoryError"


def test_health_changes_arrive_without_a_refresh(client: TestClient) -> None:
    """A health check that passes: the row says healthy on its own."""
    checked = container("checked")
    checked["docker_config"] = {
        "config": {
            "Healthcheck": {
                "Test": ["CMD", "true"],
                "Interval": 200_000_000,
                "Retries": 1,
            }
        }
    }
    task_id, _ = _started(client, task_body(unique_arn(), checked))

    row = eventually(
        lambda: (r := _row(client, task_id, "checked"))["health"] == "healthy" and r,
        10,
    )

    assert row["status"] == "RUNNING"


def test_a_docker_rename_arrives_without_a_refresh(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """``docker rename``: the row takes the new name, and is found by it."""
    task_id, views = _started(client, task_body(unique_arn()))
    new = f"renamed-{uuid.uuid4().hex[:12]}"

    docker_api.rename(views["main"]["docker_id"], new)
    row = eventually(
        lambda: (r := _row(client, task_id, "main"))["docker_name"] == new and r,
        3,
    )

    assert row["docker_id"] == views["main"]["docker_id"]
    assert client.get(f"/v1/containers/{new}").status_code == 200


@pytest.fixture
def restorable_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private engine whose containers outlive it (``--live-restore``)."""
    root = Path(tmp_path_factory.mktemp("engine"))
    engine = PrivateEngine(root, extra_args=("--live-restore",)).start()
    try:
        yield engine
    finally:
        engine.close()
        # With live restore the engine leaves its data root mounted.
        subprocess.run(["umount", str(root / "data")], capture_output=True)


@pytest.mark.slow
def test_the_watcher_reconnects_and_catches_up_after_an_engine_restart(
    settings: Settings, restorable_engine: PrivateEngine
) -> None:
    """Killed while the engine was down: STOPPED 137, and events flow again."""
    private = settings.model_copy(update={"docker_host": restorable_engine.url})
    upgrade(private.resolved_database_url)
    body = task_body(unique_arn(), container("gone"), container("later"))
    with TestClient(create_app(private)) as client:
        watcher = client.app.state.watcher
        task_id, views = _started(client, body)
        api = restorable_engine.api()
        pid = api.inspect_container(views["gone"]["docker_id"])["State"]["Pid"]

        restorable_engine.stop()
        os.kill(pid, signal.SIGKILL)
        restorable_engine.start()

        gone = eventually(
            lambda: (r := _row(client, task_id, "gone"))["status"] == "STOPPED" and r,
            20,
        )
        assert watcher.reconnects >= 1 and gone["exit_code"] == 137
        assert _row(client, task_id, "later")["status"] == "RUNNING"

        api = restorable_engine.api()
        api.kill(views["later"]["docker_id"])
        later = eventually(
            lambda: (r := _row(client, task_id, "later"))["status"] == "STOPPED" and r,
            3,
        )
        assert later["exit_code"] == 137
