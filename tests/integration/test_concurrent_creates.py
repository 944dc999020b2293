"""Concurrent creates of one container make one Docker container: from
threads of one berth, and from two berth processes on one database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import unique_arn
from tests.support.recovery import log_path, on_engine, server_env, task_body
from tests.support.server import BerthServer

RACERS = 8


def test_racing_creates_in_one_process_make_one_container(
    client: TestClient, docker_api: docker.APIClient, host_id: str
) -> None:
    """Eight at once: one 201, seven 200, one ID, one engine container."""
    arn = unique_arn()
    task_id = client.post("/v1/tasks", json=task_body(arn)).json()["id"]
    url = f"/v1/tasks/{task_id}/containers/main/create"

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(lambda _: client.post(url), range(RACERS)))

    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * (RACERS - 1) + [201]
    ids = {a.json()["docker_id"] for a in answers}
    assert [c["Id"] for c in on_engine(docker_api, host_id, arn)] == list(ids)


@pytest.fixture
def two_servers(settings: Settings) -> Any:
    """Two berth processes on one SQLite file and one host identity."""
    servers = [
        BerthServer(server_env(settings), log_path(settings, f"berth{i}.log"))
        for i in (1, 2)
    ]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.kill()


def test_racing_creates_from_two_processes_make_one_container(
    two_servers: list[BerthServer], docker_api: docker.APIClient, host_id: str
) -> None:
    """Four creates through each of two berths: one container, one ID."""
    arn = unique_arn()
    first, second = two_servers
    with first.client() as http:
        task_id = http.post("/v1/tasks", json=task_body(arn)).json()["id"]
    path = f"/v1/tasks/{task_id}/containers/main/create"

    def create(i: int) -> httpx.Response:
        with two_servers[i % 2].client() as http:
            return http.post(path)

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(create, range(RACERS)))

    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * (RACERS - 1) + [201], [a.text for a in answers]
    ids = {a.json()["docker_id"] for a in answers}
    names = {a.json()["docker_name"] for a in answers}
    assert len(ids) == 1 and len(names) == 1
    assert [c["Id"] for c in on_engine(docker_api, host_id, arn)] == list(ids)
    with second.client() as http:
        assert http.get(path.removesuffix("/create")).json()["docker_id"] in ids
