"""Recovery on a real engine: POST /v1/reconcile and ``berth reconcile``.

The event watcher is off here, so that what changes is reconcile's doing
and not the watcher's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.metadata import parse_docker_time
from app.main import create_app
from app.store.migrate import upgrade
from tests.conftest import TEST_IMAGE, unique_arn
from tests.support.recovery import (
    CONTAINER_NAME_LABEL,
    TASK_ARN_LABEL,
    container,
    eventually,
    our_labels,
    server_env,
    task_body,
)

# Long enough that a second run's times lie outside the span any Status
# text ("N seconds ago", say) allows for the first run's.
APART_S = 5.0


@pytest.fixture
def quiet(settings: Settings) -> Iterator[TestClient]:
    """berth in-process with no event watcher."""
    quiet_settings = settings.model_copy(update={"events": False})
    upgrade(quiet_settings.resolved_database_url)
    with TestClient(create_app(quiet_settings)) as client:
        yield client


def _created(client: TestClient, body: dict) -> tuple[str, dict]:
    task = client.post("/v1/tasks", json=body).json()
    name = body["containers"][0]["name"]
    view = client.post(f"/v1/tasks/{task['id']}/containers/{name}/create")
    assert view.status_code == 201, view.text
    return task["id"], view.json()


def _orphan(api: docker.APIClient, host_id: str) -> str:
    name = f"orphan-{uuid.uuid4().hex[:12]}"
    api.create_container(
        TEST_IMAGE,
        ["sleep", "30"],
        name=name,
        labels=our_labels(unique_arn(), "stray", host_id),
    )
    return name


def test_a_container_removed_behind_berths_back_is_removed_after_reconcile(
    quiet: TestClient, docker_api: docker.APIClient
) -> None:
    """``docker rm -f`` then reconcile: REMOVED, and named in the report."""
    task_id, view = _created(quiet, task_body(unique_arn()))
    docker_api.remove_container(view["docker_id"], force=True)

    report = quiet.post("/v1/reconcile").json()

    assert report["removed"] == [view["docker_name"]]
    after = quiet.get(f"/v1/tasks/{task_id}/containers/main").json()
    assert after["status"] == "REMOVED"


def test_a_labelled_container_berth_never_made_is_an_orphan(
    quiet: TestClient, docker_api: docker.APIClient, host_id: str
) -> None:
    """Reported as an orphan; removed only with ``remove_orphans=true``."""
    name = _orphan(docker_api, host_id)

    reported = quiet.post("/v1/reconcile").json()
    still_there = docker_api.containers(all=True, filters={"name": name})
    removed = quiet.post("/v1/reconcile", params={"remove_orphans": "true"}).json()

    # Membership, not equality: the shared engine may hold other orphans.
    assert name in reported["orphans"] and reported["orphans_removed"] == []
    assert still_there
    assert name in removed["orphans_removed"]
    assert docker_api.containers(all=True, filters={"name": name}) == []


def test_an_exit_that_happened_while_nobody_listened_is_not_stale(
    quiet: TestClient, docker_api: docker.APIClient
) -> None:
    """It ran again and exited with another code: reconcile says so."""
    once = "test -f /ran && exit 3; touch /ran; exit 0"
    body = task_body(unique_arn(), container("main", "sh", "-c", once))
    task_id, view = _created(quiet, body)
    quiet.post(f"/v1/tasks/{task_id}/containers/main/start")
    url = f"/v1/tasks/{task_id}/containers/main"
    eventually(
        lambda: (
            quiet.get(url, params={"refresh": "true"}).json()["status"] == "STOPPED"
        ),
        10,
    )
    first = quiet.get(url).json()["exit_code"]
    docker_api.start(view["docker_id"])
    docker_api.wait(view["docker_id"], timeout=30)

    report = quiet.post("/v1/reconcile").json()

    assert first == 0
    assert report["refreshed"] == [view["docker_name"]]
    assert quiet.get(url).json()["exit_code"] == 3


def test_the_cli_reports_and_removes_orphans(
    settings: Settings, docker_api: docker.APIClient, host_id: str
) -> None:
    """``berth reconcile --remove-orphans`` prints the report as JSON."""
    upgrade(settings.resolved_database_url)
    name = _orphan(docker_api, host_id)

    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "reconcile", "--remove-orphans"],
        env={**server_env(settings), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert name in report["orphans"] and name in report["orphans_removed"]
    assert docker_api.containers(all=True, filters={"name": name}) == []


def test_the_cli_says_when_the_engine_is_unreachable(
    settings: Settings, tmp_path
) -> None:
    """No engine: a one-line named error and exit status 1, no traceback."""
    upgrade(settings.resolved_database_url)
    env = server_env(settings, BERTH_DOCKER_HOST=f"unix://{tmp_path}/none.sock")

    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "reconcile"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert "EngineUnavailableError" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_ecs_container_without_berths_host_label_is_no_orphan(
    quiet: TestClient, docker_api: docker.APIClient
) -> None:
    """ECS labels and no ``io.berth.host-id``: not reported, never removed."""
    name = f"ecs-agent-{uuid.uuid4().hex[:12]}"
    labels = {TASK_ARN_LABEL: unique_arn(), CONTAINER_NAME_LABEL: "main"}
    docker_api.create_container(TEST_IMAGE, ["true"], name=name, labels=labels)
    try:
        report = quiet.post("/v1/reconcile", params={"remove_orphans": "true"})

        assert name not in report.json()["orphans"]
        assert docker_api.containers(all=True, filters={"name": name})
    finally:
        docker_api.remove_container(name, force=True)


def _stopped(client: TestClient, task_id: str) -> dict[str, Any]:
    url = f"/v1/tasks/{task_id}/containers/main"
    return eventually(
        lambda: (
            (r := client.get(url, params={"refresh": "true"}).json())["status"]
            == "STOPPED"
            and r
        ),
        10,
    )


def _run_again(api: docker.APIClient, docker_id: str) -> dict[str, Any]:
    """Run the container once more, as if someone did while berth was down."""
    time.sleep(APART_S)
    api.start(docker_id)
    api.wait(docker_id, timeout=30)
    state: dict[str, Any] = api.inspect_container(docker_id)["State"]
    return state


def _time(text: str) -> datetime:
    parsed = parse_docker_time(text)
    assert parsed is not None, text
    return parsed


def _same_moment(ours: str, engines: str) -> bool:
    # Docker writes nanoseconds; berth keeps microseconds, as parsed here.
    return _time(ours) == _time(engines)


def test_an_exit_with_the_same_code_at_another_time_is_refreshed(
    quiet: TestClient, docker_api: docker.APIClient
) -> None:
    """Exited 3, ran again, exited 3 again: reconcile stores the new times."""
    body = task_body(unique_arn(), container("main", "sh", "-c", "exit 3"))
    task_id, view = _created(quiet, body)
    quiet.post(f"/v1/tasks/{task_id}/containers/main/start")
    first = _stopped(quiet, task_id)
    engine = _run_again(docker_api, view["docker_id"])

    report = quiet.post("/v1/reconcile").json()

    after = quiet.get(f"/v1/tasks/{task_id}/containers/main").json()
    assert report["refreshed"] == [view["docker_name"]]
    assert after["exit_code"] == first["exit_code"] == 3
    assert _time(after["finished_at"]) > _time(first["finished_at"])
    assert _same_moment(after["finished_at"], engine["FinishedAt"])


def test_the_start_up_reconcile_stores_a_run_made_while_berth_was_down(
    settings: Settings, docker_api: docker.APIClient
) -> None:
    """Same exit code, later times: berth's next start-up picks them up."""
    quiet_settings = settings.model_copy(update={"events": False})
    upgrade(quiet_settings.resolved_database_url)
    body = task_body(unique_arn(), container("main", "sh", "-c", "exit 3"))
    with TestClient(create_app(quiet_settings)) as before:
        task_id, view = _created(before, body)
        before.post(f"/v1/tasks/{task_id}/containers/main/start")
        first = _stopped(before, task_id)
    engine = _run_again(docker_api, view["docker_id"])

    with TestClient(create_app(quiet_settings)) as after:
        row = after.get(f"/v1/tasks/{task_id}/containers/main").json()

    assert _time(row["finished_at"]) > _time(first["finished_at"])
    assert _same_moment(row["started_at"], engine["StartedAt"])
    assert _same_moment(row["finished_at"], engine["FinishedAt"])


def test_a_restart_while_nobody_listened_is_refreshed(
    quiet: TestClient, docker_api: docker.APIClient
) -> None:
    """Running, restarted behind berth's back, running: the new start time."""
    task_id, view = _created(quiet, task_body(unique_arn()))
    url = f"/v1/tasks/{task_id}/containers/main"
    first = quiet.post(f"{url}/start").json()
    time.sleep(APART_S)
    docker_api.restart(view["docker_id"], timeout=0)
    engine = docker_api.inspect_container(view["docker_id"])["State"]

    report = quiet.post("/v1/reconcile").json()

    after = quiet.get(url).json()
    assert report["refreshed"] == [view["docker_name"]]
    assert after["status"] == "RUNNING"
    assert _time(after["started_at"]) > _time(first["started_at"])
    assert _same_moment(after["started_at"], engine["StartedAt"])


def _refreshed_total(client: TestClient) -> float:
    metrics = client.get("/metrics").text
    found = re.search(
        r'^berth_reconcile_findings_total\{kind="refreshed"\} (\S+)$',
        metrics,
        re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


def test_a_failed_start_is_not_refreshed_by_every_reconcile(
    quiet: TestClient,
) -> None:
    """FAILED, and "created" on the engine: reconciles report nothing."""
    refused = {**container("main"), "user": "nosuchuser"}
    task_id, _ = _created(quiet, task_body(unique_arn(), refused))
    url = f"/v1/tasks/{task_id}/containers/main"
    started = quiet.post(f"{url}/start")
    assert started.status_code == 422, started.text
    assert quiet.get(url).json()["status"] == "FAILED"
    counted = _refreshed_total(quiet)

    reports = [quiet.post("/v1/reconcile").json() for _ in range(2)]

    assert [r["refreshed"] for r in reports] == [[], []]
    assert _refreshed_total(quiet) == counted
    assert quiet.get(url).json()["status"] == "FAILED"


def _renamed(api: docker.APIClient, docker_id: str) -> str:
    name = f"renamed-{uuid.uuid4().hex[:12]}"
    api.rename(docker_id, name)
    return name


def test_a_refresh_follows_a_docker_rename(
    quiet: TestClient, docker_api: docker.APIClient
) -> None:
    """``docker rename``, then GET ?refresh=true: the new name, found by it."""
    task_id, view = _created(quiet, task_body(unique_arn()))
    new = _renamed(docker_api, view["docker_id"])
    url = f"/v1/tasks/{task_id}/containers/main"

    refreshed = quiet.get(url, params={"refresh": "true"}).json()
    owner = quiet.get(f"/v1/containers/{new}")

    assert refreshed["docker_name"] == new
    assert owner.status_code == 200, owner.text
    assert owner.json()["docker_id"] == view["docker_id"]


def test_a_reconcile_follows_a_docker_rename(
    quiet: TestClient, docker_api: docker.APIClient
) -> None:
    """``docker rename``, then POST /v1/reconcile: refreshed, new name."""
    task_id, view = _created(quiet, task_body(unique_arn()))
    new = _renamed(docker_api, view["docker_id"])

    report = quiet.post("/v1/reconcile").json()

    assert report["refreshed"] == [view["docker_name"]]
    after = quiet.get(f"/v1/tasks/{task_id}/containers/main").json()
    assert after["docker_name"] == new
