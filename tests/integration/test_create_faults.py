"""The create protocol when Docker's answer is lost, on a real engine.

A proxy in front of the engine lets every request through and loses only
the answer to the create: the engine makes the container for real, and
berth must find it rather than make a second one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade
from tests.conftest import DOCKER_HOST, unique_arn
from tests.support.proxy import EngineProxy
from tests.support.recovery import container, on_engine, task_body

CREATE = "/containers/create"


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[EngineProxy]:
    engine_proxy = EngineProxy(DOCKER_HOST, tmp_path).start()
    yield engine_proxy
    engine_proxy.close()


def _client(settings: Settings, proxy: EngineProxy, timeout: float) -> TestClient:
    proxied = settings.model_copy(
        update={"docker_host": proxy.url, "docker_timeout": timeout, "events": False}
    )
    upgrade(proxied.resolved_database_url)
    return TestClient(create_app(proxied))


def _register(client: TestClient, body: dict) -> str:
    return str(client.post("/v1/tasks", json=body).json()["id"])


def test_a_create_whose_answer_timed_out_is_adopted(
    settings: Settings, proxy: EngineProxy, docker_api: docker.APIClient, host_id: str
) -> None:
    """The engine made it, the answer came too late: adopt, one container."""
    arn = unique_arn()
    with _client(settings, proxy, timeout=2) as client:
        task_id = _register(client, task_body(arn))
        proxy.delay(CREATE, 4)

        answer = client.post(f"/v1/tasks/{task_id}/containers/main/create")

    assert answer.status_code == 201, answer.text
    made = on_engine(docker_api, host_id, arn)
    assert [c["Id"] for c in made] == [answer.json()["docker_id"]]


def test_a_create_whose_connection_was_cut_is_adopted(
    settings: Settings, proxy: EngineProxy, docker_api: docker.APIClient, host_id: str
) -> None:
    """The connection dropped after the engine made it: adopt, one container."""
    arn = unique_arn()
    with _client(settings, proxy, timeout=10) as client:
        task_id = _register(client, task_body(arn))
        proxy.drop(CREATE)

        answer = client.post(f"/v1/tasks/{task_id}/containers/main/create")

    assert answer.status_code == 201, answer.text
    made = on_engine(docker_api, host_id, arn)
    assert [c["Id"] for c in made] == [answer.json()["docker_id"]]


def test_creates_of_different_containers_do_not_wait_on_each_other(
    settings: Settings, proxy: EngineProxy, docker_api: docker.APIClient, host_id: str
) -> None:
    """One create held up by the engine; another finishes meanwhile."""
    arn = unique_arn()
    body = task_body(arn, container("slow"), container("fast"))
    with _client(settings, proxy, timeout=30) as client:
        task_id = _register(client, body)
        proxy.delay("-slow-", 5)
        slow: list[int] = []
        url = f"/v1/tasks/{task_id}/containers"
        held = threading.Thread(
            target=lambda: slow.append(client.post(f"{url}/slow/create").status_code)
        )
        held.start()
        time.sleep(0.5)

        started = time.monotonic()
        fast = client.post(f"{url}/fast/create")
        fast_took = time.monotonic() - started
        slow_pending = held.is_alive()
        held.join(30)

    assert fast.status_code == 201 and fast_took < 2.5
    assert slow_pending and slow == [201]
    assert len(on_engine(docker_api, host_id, arn)) == 2
