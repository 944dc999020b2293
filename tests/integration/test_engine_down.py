"""An engine that hangs or goes away: berth answers with a named error in
bounded time, stays alive, and recovers by itself when the engine returns.

Every test here stops or pauses an engine of its own, never the shared one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from app.config import Settings
from tests.conftest import unique_arn
from tests.support.engine import PrivateEngine
from tests.support.recovery import (
    eventually,
    log_path,
    on_engine,
    server_env,
    task_body,
)
from tests.support.server import BerthServer

DOCKER_TIMEOUT_S = 5
ENGINE_ERRORS = {503: "EngineUnavailableError", 504: "DockerTimeoutError"}


@pytest.fixture
def server(settings: Settings, private_engine: PrivateEngine) -> Iterator[BerthServer]:
    env = server_env(
        settings,
        BERTH_DOCKER_HOST=private_engine.url,
        BERTH_DOCKER_TIMEOUT=str(DOCKER_TIMEOUT_S),
    )
    berth = BerthServer(env, log_path(settings)).start()
    with berth.client() as http:
        eventually(lambda: http.get("/readyz").status_code == 200, 20)
    yield berth
    berth.kill()


def _named_engine_error(answer: httpx.Response) -> bool:
    return ENGINE_ERRORS.get(answer.status_code) == answer.json().get("error_name")


@pytest.mark.slow
def test_a_paused_engine_gets_a_named_error_in_bounded_time(
    server: BerthServer, private_engine: PrivateEngine, host_id: str
) -> None:
    """Paused: a named 503/504 within 20 s, /healthz up; resumed: one container."""
    arn = unique_arn()
    with server.client() as http:
        task_id = http.post("/v1/tasks", json=task_body(arn)).json()["id"]
    create = f"/v1/tasks/{task_id}/containers/main/create"
    answers: list[httpx.Response] = []

    def send() -> None:
        with server.client() as http:
            answers.append(http.post(create))

    private_engine.pause()
    started = time.monotonic()
    in_flight = threading.Thread(target=send)
    in_flight.start()
    time.sleep(0.5)
    with server.client(timeout=5) as http:
        health = [http.get("/healthz").status_code for _ in range(5)]
        ready = http.get("/readyz").status_code
        task = http.get(f"/v1/tasks/{task_id}").status_code
    in_flight.join(30)
    took = time.monotonic() - started
    private_engine.resume()

    with server.client() as http:
        retried = http.post(create)
        eventually(lambda: http.get("/readyz").status_code == 200, 20)

    assert took < 20 and _named_engine_error(answers[0]), answers[0].text
    assert health == [200] * 5 and ready == 503 and task == 200
    assert retried.status_code in (200, 201), retried.text
    made = on_engine(private_engine.api(), host_id, arn)
    assert [c["Id"] for c in made] == [retried.json()["docker_id"]]


@pytest.mark.slow
def test_a_stopped_engine_is_unavailable_until_it_is_back(
    server: BerthServer, private_engine: PrivateEngine, host_id: str
) -> None:
    """Stopped: 503 EngineUnavailableError; started again: create works."""
    arn = unique_arn()
    with server.client() as http:
        task_id = http.post("/v1/tasks", json=task_body(arn)).json()["id"]
        create = f"/v1/tasks/{task_id}/containers/main/create"

        private_engine.stop()
        refused = http.post(create)
        not_ready = http.get("/readyz").status_code
        private_engine.start()
        retried = http.post(create)

    assert refused.status_code == 503
    assert refused.json()["error_name"] == "EngineUnavailableError"
    assert not_ready == 503
    assert retried.status_code == 201, retried.text
    made = on_engine(private_engine.api(), host_id, arn)
    assert [c["Id"] for c in made] == [retried.json()["docker_id"]]
