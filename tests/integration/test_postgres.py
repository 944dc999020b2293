"""berth on PostgreSQL: the same flows as on SQLite, and several berth
processes sharing one database and one engine without making a container
twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade
from tests.conftest import DOCKER_HOST, HOST_LABEL, TEST_IMAGE, unique_arn
from tests.support.server import BerthServer

RACED_CONTAINERS = 10


@pytest.fixture
def pg_client(pg_settings: Settings) -> Iterator[TestClient]:
    """berth in-process on a fresh, migrated PostgreSQL database."""
    upgrade(pg_settings.resolved_database_url)
    with TestClient(create_app(pg_settings)) as client:
        yield client


def _task(*names: str, family: str = "pg") -> dict[str, Any]:
    return {
        "arn": unique_arn(family),
        "family": family,
        "version": "1",
        "containers": [
            {"name": n, "image": TEST_IMAGE, "command": ["sleep", "60"]} for n in names
        ],
    }


def _engine_ids(docker_api: docker.APIClient, host_id: str) -> set[str]:
    listed = docker_api.containers(
        all=True, filters={"label": f"{HOST_LABEL}={host_id}"}
    )
    return {c["Id"] for c in listed}


def test_register_create_start_stop_delete(
    pg_client: TestClient, docker_api: docker.APIClient, host_id: str
) -> None:
    """The whole life of a container works on PostgreSQL as on SQLite."""
    task = pg_client.post("/v1/tasks", json=_task("main")).json()
    path = f"/v1/tasks/{task['id']}/containers/main"

    created = pg_client.post(f"{path}/create")
    started = pg_client.post(f"{path}/start")
    stopped = pg_client.post(f"{path}/stop", params={"timeout": 0})
    deleted = pg_client.delete(f"/v1/tasks/{task['id']}", params={"timeout": 0})

    assert created.status_code == 201
    assert started.json()["status"] == "RUNNING"
    assert stopped.json()["status"] == "STOPPED"
    assert deleted.status_code == 204
    assert pg_client.get(f"/v1/tasks/{task['id']}").status_code == 404
    assert _engine_ids(docker_api, host_id) == set()


def test_create_is_idempotent_and_times_keep_their_zone(
    pg_client: TestClient,
) -> None:
    """A second create answers 200 with the same ID; times come back as UTC
    with their zone, as they do on SQLite."""
    task = pg_client.post("/v1/tasks", json=_task("main")).json()
    path = f"/v1/tasks/{task['id']}/containers/main/create"

    first = pg_client.post(path)
    second = pg_client.post(path)

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["docker_id"] == second.json()["docker_id"]
    assert task["created_at"].endswith("Z") or task["created_at"].endswith("+00:00")
    assert second.json()["created_at"] is not None


def test_register_is_idempotent_and_refuses_a_changed_spec(
    pg_client: TestClient,
) -> None:
    """Same ARN and spec: 200 and the same task; a changed spec: 409."""
    body = _task("main")
    changed = {**body, "version": "2"}

    first = pg_client.post("/v1/tasks", json=body)
    again = pg_client.post("/v1/tasks", json=body)
    conflict = pg_client.post("/v1/tasks", json=changed)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert conflict.status_code == 409
    assert conflict.json()["error_name"] == "TaskConflictError"


def test_concurrent_registrations_of_one_arn_make_one_task(
    pg_client: TestClient,
) -> None:
    """Racing registrations of one ARN all answer with the one task."""
    body = _task("main")

    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: pg_client.post("/v1/tasks", json=body), range(8))
        )

    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["id"] for a in answers}) == 1


def test_list_filters_and_pages(pg_client: TestClient) -> None:
    """Listing filters by family and pages, oldest first."""
    ids = [
        pg_client.post("/v1/tasks", json=_task("main", family="pgpage")).json()["id"]
        for _ in range(3)
    ]
    pg_client.post("/v1/tasks", json=_task("main", family="other"))

    page = pg_client.get("/v1/tasks", params={"family": "pgpage", "limit": 2}).json()
    rest = pg_client.get(
        "/v1/tasks", params={"family": "pgpage", "limit": 2, "offset": 2}
    ).json()

    assert page["total"] == 3
    assert [t["id"] for t in page["items"] + rest["items"]] == ids


def test_reconcile_notices_a_container_removed_behind_its_back(
    pg_settings: Settings, docker_api: docker.APIClient
) -> None:
    """A container removed outside berth is REMOVED after a reconcile."""
    # No event stream: it would see the removal first and leave the
    # reconcile nothing to find.
    quiet = Settings(**{**pg_settings.model_dump(), "events": False})
    upgrade(quiet.resolved_database_url)
    with TestClient(create_app(quiet)) as client:
        task = client.post("/v1/tasks", json=_task("main")).json()
        path = f"/v1/tasks/{task['id']}/containers/main"
        created = client.post(f"{path}/create").json()
        docker_api.remove_container(created["docker_id"], force=True)

        report = client.post("/v1/reconcile").json()
        after = client.get(path).json()

    assert created["docker_name"] in report["removed"]
    assert after["status"] == "REMOVED"


# Two berth processes, one database, one engine.


@pytest.fixture
def twin_servers(
    tmp_path: Path, pg_url: str, host_id: str
) -> Iterator[tuple[BerthServer, BerthServer]]:
    """Two ``berth serve`` processes for one host, on one PostgreSQL
    database and the shared engine, started together on an empty
    database (so they also race to migrate it)."""
    servers = []
    for name in ("a", "b"):
        state = tmp_path / name
        state.mkdir()
        env = {
            "BERTH_DATABASE_URL": pg_url,
            "BERTH_HOST_ID": host_id,
            "BERTH_DOCKER_HOST": DOCKER_HOST,
            "BERTH_STATE_DIR": str(state),
            "BERTH_LOG_FORMAT": "json",
        }
        servers.append(BerthServer(env, tmp_path / f"berth-{name}.log"))
    try:
        for server in servers:
            server.start(wait=False)
        for server in servers:
            server.wait_healthy()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.kill()


def _race(
    servers: tuple[BerthServer, BerthServer], task_id: str, names: list[str]
) -> list[tuple[str, httpx.Response]]:
    """Every container created through both servers at once."""
    clients = [s.client() for s in servers]
    jobs = [(name, client) for name in names for client in clients]

    def create(job: tuple[str, httpx.Client]) -> tuple[str, httpx.Response]:
        name, client = job
        return name, client.post(f"/v1/tasks/{task_id}/containers/{name}/create")

    try:
        with ThreadPoolExecutor(len(jobs)) as pool:
            return list(pool.map(create, jobs))
    finally:
        for client in clients:
            client.close()


def _docker_ids(server: BerthServer, task_id: str) -> dict[str, str]:
    with server.client() as client:
        task = client.get(f"/v1/tasks/{task_id}").raise_for_status().json()
    return {c["name"]: c["docker_id"] for c in task["containers"]}


@pytest.mark.slow
def test_two_servers_racing_make_each_container_once(
    twin_servers: tuple[BerthServer, BerthServer],
    docker_api: docker.APIClient,
    host_id: str,
) -> None:
    """Two berths on one PostgreSQL database racing to create the same ten
    containers make ten, answer with the same Docker IDs, and keep that
    map through a kill -9 of both and a restart."""
    names = [f"c{i}" for i in range(RACED_CONTAINERS)]
    body = _task(*names, family="race")
    with twin_servers[0].client() as a, twin_servers[1].client() as b:
        task = a.post("/v1/tasks", json=body).json()
        assert b.post("/v1/tasks", json=body).json()["id"] == task["id"]

    answers = _race(twin_servers, task["id"], names)

    by_name: dict[str, list[httpx.Response]] = {}
    for name, answer in answers:
        by_name.setdefault(name, []).append(answer)
    for name, pair in by_name.items():
        assert sorted(r.status_code for r in pair) == [200, 201], name
        assert len({r.json()["docker_id"] for r in pair}) == 1, name
    answered = {name: pair[0].json()["docker_id"] for name, pair in by_name.items()}
    assert _engine_ids(docker_api, host_id) == set(answered.values())
    assert len(answered) == RACED_CONTAINERS

    for server in twin_servers:
        server.kill()
    for server in twin_servers:
        server.start(wait=False)
    for server in twin_servers:
        server.wait_healthy()

    assert _docker_ids(twin_servers[0], task["id"]) == answered
    assert _docker_ids(twin_servers[1], task["id"]) == answered
    again = _race(twin_servers, task["id"], names)
    assert {r.status_code for _, r in again} == {200}
    assert {name: r.json()["docker_id"] for name, r in again} == answered
    assert _engine_ids(docker_api, host_id) == set(answered.values())


def test_a_crash_mid_create_is_recovered_by_the_other_server(
    twin_servers: tuple[BerthServer, BerthServer],
    docker_api: docker.APIClient,
    host_id: str,
) -> None:
    """A server killed right after Docker made the container leaves a name
    in the shared database; the other server adopts that container instead
    of making a second one."""
    crasher, survivor = twin_servers
    crasher.kill()
    crasher.start(BERTH_CRASH_AT="after-docker-create")
    with survivor.client() as client:
        task = client.post("/v1/tasks", json=_task("main")).json()
    path = f"/v1/tasks/{task['id']}/containers/main/create"

    with crasher.client() as client, pytest.raises(httpx.TransportError):
        client.post(path)
    with survivor.client() as client:
        adopted = client.post(path)

    made = _engine_ids(docker_api, host_id)
    # 200 when the survivor's event watcher saw the container's create event
    # and adopted it before the request came: either way, no second one.
    assert adopted.status_code in (200, 201)
    assert made == {adopted.json()["docker_id"]}
    _wait_exited(crasher)


def _wait_exited(server: BerthServer, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while server.process is not None and server.process.poll() is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the crashing server did not exit")
        time.sleep(0.05)
