"""Hosts: berths sharing one PostgreSQL database each see only their own
host's tasks, rows and containers.

To a berth, a task registered through another host's berth does not
exist: reading, creating, starting or deleting it answers 404
``TaskNotFoundError``, exactly as for an ID nobody registered, so a caller
learns nothing about other hosts and no berth ever creates another host's
containers. The same ARN may be registered on each host; each gets a task
of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.config import Settings
from app.main import create_app
from app.service.events import EventWatcher
from app.store.migrate import upgrade
from tests.conftest import (
    DOCKER_HOST,
    HOST_LABEL,
    TEST_IMAGE,
    remove_labelled,
    unique_arn,
)
from tests.support.engine import PrivateEngine

ARN_LABEL = "com.amazonaws.ecs.task-arn"
NAME_LABEL = "com.amazonaws.ecs.container-name"


@pytest.fixture(scope="module")
def second_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateEngine]:
    """A second dockerd on this machine, standing for another host."""
    engine = PrivateEngine(Path(tmp_path_factory.mktemp("host-b"))).start()
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def other_host() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def _settings(tmp_path: Path, name: str, **values: Any) -> Settings:
    state = tmp_path / name
    state.mkdir()
    values.setdefault("docker_host", DOCKER_HOST)
    return Settings(state_dir=state, docker_timeout=30, **values)


@pytest.fixture
def berths(
    tmp_path: Path,
    pg_url: str,
    host_id: str,
    other_host: str,
    second_engine: PrivateEngine,
    docker_api: docker.APIClient,
) -> Iterator[tuple[TestClient, TestClient]]:
    """Berth A on the shared engine and berth B on the second one, with
    their own host IDs, sharing one PostgreSQL database."""
    upgrade(pg_url)
    a = _settings(tmp_path, "a", database_url=pg_url, host_id=host_id)
    b = _settings(
        tmp_path,
        "b",
        database_url=pg_url,
        host_id=other_host,
        docker_host=second_engine.url,
    )
    try:
        with ExitStack() as stack:
            yield (
                stack.enter_context(TestClient(create_app(a))),
                stack.enter_context(TestClient(create_app(b))),
            )
    finally:
        api = second_engine.api()
        remove_labelled(api, other_host)
        api.close()


@pytest.fixture
def neighbours(
    tmp_path: Path, pg_url: str, host_id: str, other_host: str, docker_api: Any
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two berths with their own host IDs on one engine and one database:
    every container of either is in the other's view of the engine.

    No event streams: their reconcile on connect would race with the
    states these tests set up.
    """
    upgrade(pg_url)
    quiet = {"database_url": pg_url, "events": False, "reconcile_on_start": False}
    a = _settings(tmp_path, "a", host_id=host_id, **quiet)
    b = _settings(tmp_path, "b", host_id=other_host, **quiet)
    try:
        with ExitStack() as stack:
            yield (
                stack.enter_context(TestClient(create_app(a))),
                stack.enter_context(TestClient(create_app(b))),
            )
    finally:
        remove_labelled(docker_api, other_host)


@pytest.fixture
def strangers(
    tmp_path: Path, host_id: str, other_host: str, docker_api: docker.APIClient
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two berths with their own host IDs and their own SQLite files on one
    engine: nothing shared but the engine, so no row tells either of the
    other's containers, only their labels do."""
    clients = []
    for name, host in (("a", host_id), ("b", other_host)):
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
        upgrade(url)
        clients.append(
            _settings(tmp_path, name, host_id=host, database_url=url, events=False)
        )
    try:
        with ExitStack() as stack:
            a, b = (stack.enter_context(TestClient(create_app(c))) for c in clients)
            yield a, b
    finally:
        remove_labelled(docker_api, other_host)


def _task(arn: str | None = None) -> dict[str, Any]:
    return {
        "arn": arn or unique_arn("hosts"),
        "family": "hosts",
        "version": "1",
        "containers": [
            {"name": "main", "image": TEST_IMAGE, "command": ["sleep", "60"]}
        ],
    }


def _start(client: TestClient, arn: str | None = None) -> dict[str, Any]:
    task = client.post("/v1/tasks", json=_task(arn)).json()
    started = client.post(f"/v1/tasks/{task['id']}/containers/main/start")
    assert started.status_code == 200, started.text
    container: dict[str, Any] = started.json()
    return container


def _plant_orphan(api: docker.APIClient, host: str) -> str:
    """A container with berth's labels for ``host`` and no row anywhere."""
    name = f"orphan-{uuid.uuid4().hex[:12]}"
    labels = {
        ARN_LABEL: unique_arn("orphan"),
        NAME_LABEL: "main",
        HOST_LABEL: host,
    }
    api.create_container(TEST_IMAGE, ["sleep", "60"], name=name, labels=labels)
    return name


def _ids(api: docker.APIClient, host: str) -> set[str]:
    listed = api.containers(all=True, filters={"label": f"{HOST_LABEL}={host}"})
    return {c["Id"] for c in listed}


def test_a_task_of_another_host_does_not_exist_here(
    berths: tuple[TestClient, TestClient], second_engine: PrivateEngine
) -> None:
    """B answers 404 TaskNotFoundError for A's task, whatever it is asked,
    lists it nowhere, and creates nothing on its engine."""
    a, b = berths
    task = a.post("/v1/tasks", json=_task()).json()
    base = f"/v1/tasks/{task['id']}"

    answers = [
        b.get(base),
        b.post(f"{base}/create"),
        b.post(f"{base}/containers/main/create"),
        b.post(f"{base}/containers/main/start"),
        b.get(f"{base}/containers/main"),
        b.delete(base),
    ]
    listed = b.get("/v1/tasks", params={"arn": task["arn"]}).json()

    for answer in answers:
        assert answer.status_code == 404, answer.request.url
        assert answer.json()["error_name"] == "TaskNotFoundError"
    assert listed["total"] == 0
    api = second_engine.api()
    assert api.containers(all=True, filters={"label": ARN_LABEL}) == []
    api.close()
    assert a.get(base).status_code == 200


def test_one_arn_is_a_task_of_its_own_on_each_host(
    berths: tuple[TestClient, TestClient],
    docker_api: docker.APIClient,
    second_engine: PrivateEngine,
    host_id: str,
    other_host: str,
) -> None:
    """The same ARN registers on both hosts as two tasks, each created on
    its own host's engine only."""
    a, b = berths
    arn = unique_arn("both")

    on_a = _start(a, arn)
    on_b = _start(b, arn)

    assert on_a["task_id"] != on_b["task_id"]
    assert _ids(docker_api, host_id) == {on_a["docker_id"]}
    api = second_engine.api()
    assert _ids(api, other_host) == {on_b["docker_id"]}
    api.close()


def test_each_berth_reconciles_only_its_own_containers(
    berths: tuple[TestClient, TestClient],
    docker_api: docker.APIClient,
    second_engine: PrivateEngine,
    host_id: str,
    other_host: str,
) -> None:
    """Reconciling (orphans removed) on either host reports and removes
    only that host's orphan, and leaves the other host's rows as they are:
    neither marks the other's containers REMOVED for being absent from
    its engine."""
    a, b = berths
    api_b = second_engine.api()
    mine_a, mine_b = _start(a), _start(b)
    orphan_a = _plant_orphan(docker_api, host_id)
    orphan_b = _plant_orphan(api_b, other_host)

    report_a = a.post("/v1/reconcile", params={"remove_orphans": True}).json()
    report_b = b.post("/v1/reconcile", params={"remove_orphans": True}).json()

    assert report_a["orphans"] == report_a["orphans_removed"] == [orphan_a]
    assert report_b["orphans"] == report_b["orphans_removed"] == [orphan_b]
    for report in (report_a, report_b):
        assert report["removed"] == report["adopted"] == []
    for client, mine in ((a, mine_a), (b, mine_b)):
        path = f"/v1/tasks/{mine['task_id']}/containers/main"
        assert client.get(path).json()["status"] == "RUNNING"
    assert _ids(docker_api, host_id) == {mine_a["docker_id"]}
    assert _ids(api_b, other_host) == {mine_b["docker_id"]}
    assert b.get(f"/v1/containers/{mine_a['docker_id']}").status_code == 404
    api_b.close()


def _row(pg_url: str, task_id: str) -> dict[str, Any]:
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT status, docker_id, updated_at FROM containers "
                "WHERE task_id = :t"
            ),
            {"t": task_id},
        ).one()
    engine.dispose()
    return dict(row._mapping)


def _forget_docker_id(pg_url: str, task_id: str) -> None:
    """The row as a crash right after Docker's create leaves it."""
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE containers SET docker_id = NULL, status = 'CREATING' "
                "WHERE task_id = :t"
            ),
            {"t": task_id},
        )
    engine.dispose()


def test_berths_on_one_engine_never_adopt_or_report_each_other(
    neighbours: tuple[TestClient, TestClient],
    docker_api: docker.APIClient,
    other_host: str,
    pg_url: str,
) -> None:
    """On a shared engine, A sees B's containers but neither reports them
    as orphans, removes them, nor adopts B's unfinished create: B does."""
    a, b = neighbours
    theirs = _start(b)
    _forget_docker_id(pg_url, theirs["task_id"])

    report_a = a.post("/v1/reconcile", params={"remove_orphans": True}).json()
    row_after_a = _row(pg_url, theirs["task_id"])
    report_b = b.post("/v1/reconcile").json()

    assert report_a["orphans"] == report_a["adopted"] == []
    assert row_after_a["docker_id"] is None
    assert row_after_a["status"] == "CREATING"
    assert report_b["adopted"] == [theirs["docker_name"]]
    assert _row(pg_url, theirs["task_id"])["docker_id"] == theirs["docker_id"]
    assert _ids(docker_api, other_host) == {theirs["docker_id"]}


def test_events_of_another_hosts_container_change_nothing(
    neighbours: tuple[TestClient, TestClient], pg_url: str
) -> None:
    """A's event handling ignores a die event for B's container."""
    a, b = neighbours
    theirs = _start(b)
    before = _row(pg_url, theirs["task_id"])
    event = {
        "Type": "container",
        "Action": "die",
        "Actor": {"ID": theirs["docker_id"], "Attributes": {"exitCode": "3"}},
    }

    EventWatcher(a.app.state.context).handle(event)

    assert _row(pg_url, theirs["task_id"]) == before


def test_a_berth_never_adopts_or_removes_another_hosts_container_of_its_task(
    strangers: tuple[TestClient, TestClient],
    docker_api: docker.APIClient,
    host_id: str,
    other_host: str,
) -> None:
    """B holds A's task too: its reconcile adopts nothing, its create makes its
    own container, and deleting its task leaves A's container running."""
    a, b = strangers
    arn = unique_arn("shared")
    mine = _start(a, arn)
    task_b = b.post("/v1/tasks", json=_task(arn)).json()
    base_b = f"/v1/tasks/{task_b['id']}"

    report = b.post("/v1/reconcile", params={"remove_orphans": True}).json()
    unadopted = b.get(f"{base_b}/containers/main").json()
    theirs = b.post(f"{base_b}/containers/main/create").json()
    deleted = b.delete(base_b, params={"timeout": 0})

    assert report["adopted"] == report["orphans"] == []
    assert unadopted["docker_id"] is None
    assert theirs["docker_id"] not in (None, mine["docker_id"])
    assert deleted.status_code == 204
    assert docker_api.inspect_container(mine["docker_id"])["State"]["Running"]
    assert _ids(docker_api, other_host) == set()
    assert _ids(docker_api, host_id) == {mine["docker_id"]}
    path_a = f"/v1/tasks/{mine['task_id']}/containers/main"
    assert a.get(path_a, params={"refresh": "true"}).json()["status"] == "RUNNING"
