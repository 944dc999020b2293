"""Fault injection: the engine frozen (SIGSTOP) under a create, berth killed
while it waits, the engine thawed, berth restarted."""

from __future__ import annotations

import threading

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


def _send(server: BerthServer, path: str, answers: list[object]) -> None:
    try:
        with server.client() as http:
            answers.append(http.post(path))
    except httpx.TransportError as exc:
        answers.append(exc)


@pytest.mark.slow
def test_a_create_frozen_in_the_engine_survives_a_berth_crash(
    settings: Settings, private_engine: PrivateEngine, host_id: str
) -> None:
    """The stored name survives; the retry reuses it; one engine container."""
    arn = unique_arn()
    env = server_env(settings, BERTH_DOCKER_HOST=private_engine.url)
    server = BerthServer(env, log_path(settings)).start()
    try:
        with server.client() as http:
            eventually(lambda: http.get("/readyz").status_code == 200, 20)
            task_id = http.post("/v1/tasks", json=task_body(arn)).json()["id"]
            row = f"/v1/tasks/{task_id}/containers/main"

            private_engine.pause()
            answers: list[object] = []
            frozen = threading.Thread(
                target=_send, args=(server, row + "/create", answers)
            )
            frozen.start()
            # The name is committed before Docker is called; reading it
            # needs only the database, which answers while Docker hangs.
            stored = eventually(lambda: http.get(row).json()["docker_name"], 10)

        server.kill()
        frozen.join(10)
        private_engine.resume()
        server.start()

        with server.client() as http:
            after_restart = http.get(row).json()["docker_name"]
            retried = http.post(row + "/create")
    finally:
        server.kill()

    assert isinstance(answers[0], httpx.TransportError)
    assert after_restart == stored
    assert retried.status_code in (200, 201), retried.text
    assert retried.json()["docker_name"] == stored
    made = on_engine(private_engine.api(), host_id, arn)
    assert [c["Id"] for c in made] == [retried.json()["docker_id"]]
