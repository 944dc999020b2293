"""Fault injection: a served berth killed with SIGKILL at random moments
while it creates containers, restarted, and asked again for everything.

The seed is fixed, so a failure replays with the same kill delays (the
machine's speed still decides what each kill interrupts).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker
import httpx
import pytest

from app.config import Settings
from tests.conftest import unique_arn
from tests.support.recovery import (
    TASK_ARN_LABEL,
    log_path,
    on_engine,
    server_env,
    task_body,
)
from tests.support.server import BerthServer

SEED = 20240603
ROUNDS = 6
CREATES_PER_ROUND = 8
# A fixed delay would land before the first create or after the last on
# a machine slower or faster than expected; so each kill waits for the
# engine to hold a random number of the round's containers, then a random
# moment more, which puts it among creates in flight.
KILL_JITTER_S = 0.1
PROGRESS_TIMEOUT_S = 15.0


@dataclass
class Ledger:
    """Every task asked for so far, and how the asking went."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    answered: Counter[str] = field(default_factory=Counter)


def _create(url: str, task_id: str) -> str:
    """One client's create; says whether berth died under it."""
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            created = http.post(f"/v1/tasks/{task_id}/create")
    except httpx.TransportError:
        return "cut"
    return "done" if created.status_code == 200 else f"failed {created.status_code}"


def _made(api: docker.APIClient, host_id: str, arns: set[str]) -> int:
    labels = (c["Labels"].get(TASK_ARN_LABEL) for c in on_engine(api, host_id))
    return sum(1 for arn in labels if arn in arns)


def _wait_for(api: docker.APIClient, host_id: str, arns: set[str], n: int) -> None:
    deadline = time.monotonic() + PROGRESS_TIMEOUT_S
    while _made(api, host_id, arns) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def _round(
    server: BerthServer,
    ledger: Ledger,
    rng: random.Random,
    api: docker.APIClient,
    host_id: str,
) -> None:
    """Register eight tasks, create them all at once, kill berth meanwhile."""
    bodies = [task_body(unique_arn("crash")) for _ in range(CREATES_PER_ROUND)]
    ledger.bodies.extend(bodies)
    with server.client() as http:
        ids = [http.post("/v1/tasks", json=b).json()["id"] for b in bodies]
    arns = {b["arn"] for b in bodies}
    progress = rng.randint(1, CREATES_PER_ROUND - 1)
    jitter = rng.uniform(0, KILL_JITTER_S)

    with ThreadPoolExecutor(CREATES_PER_ROUND) as pool:
        futures = [pool.submit(_create, server.url, i) for i in ids]
        _wait_for(api, host_id, arns, progress)
        time.sleep(jitter)
        server.kill()
        ledger.answered.update(f.result() for f in futures)


def _retry_all(server: BerthServer, ledger: Ledger) -> None:
    with server.client() as http:
        for body in ledger.bodies:
            task = http.post("/v1/tasks", json=body)
            assert task.status_code in (200, 201), task.text
            created = http.post(f"/v1/tasks/{task.json()['id']}/create")
            assert created.status_code == 200, created.text


def _rows(server: BerthServer) -> list[dict[str, Any]]:
    with server.client() as http:
        page = http.get("/v1/tasks", params={"limit": 1000}).json()
    return [c for task in page["items"] for c in task["containers"]]


def _at_most_one_each(api: docker.APIClient, host_id: str) -> None:
    arns = Counter(c["Labels"][TASK_ARN_LABEL] for c in on_engine(api, host_id))
    assert max(arns.values(), default=1) == 1, arns


def _invariants(server: BerthServer, api: docker.APIClient, host_id: str) -> None:
    rows = _rows(server)
    engine = {c["Id"]: c for c in on_engine(api, host_id)}
    per_task = Counter(c["Labels"][TASK_ARN_LABEL] for c in engine.values())

    assert [r for r in rows if r["status"] == "CREATING"] == []
    assert [r for r in rows if not r["docker_id"]] == []
    # every task container has exactly one engine container ...
    assert all(per_task[r["task_arn"]] == 1 for r in rows), per_task
    # ... which is the one its row holds, and no labelled one lacks a row
    assert sorted(r["docker_id"] for r in rows) == sorted(engine)


def _recovered(server: BerthServer) -> int:
    """How many crashed creates start-up recovery adopted or made retryable."""
    done = [
        json.loads(line)
        for line in server.output().splitlines()
        if '"reconcile.done"' in line
    ]
    return sum(d["adopted"] + d["retryable"] for d in done)


@pytest.mark.slow
def test_random_kills_during_concurrent_creates_leave_one_container_each(
    settings: Settings, docker_api: docker.APIClient, host_id: str
) -> None:
    """Six kill -9 rounds, then retry: no duplicate, none missing, all IDs."""
    rng = random.Random(SEED)
    ledger = Ledger()
    server = BerthServer(server_env(settings), log_path(settings))
    try:
        for _ in range(ROUNDS):
            server.start()
            _retry_all(server, ledger)
            _invariants(server, docker_api, host_id)
            _round(server, ledger, rng, docker_api, host_id)
            _at_most_one_each(docker_api, host_id)

        server.start()
        _retry_all(server, ledger)
        _invariants(server, docker_api, host_id)
    finally:
        server.kill()

    assert len(ledger.bodies) == ROUNDS * CREATES_PER_ROUND
    # The kills must have cut real work, or the test proves nothing.
    assert ledger.answered["cut"] > 0, ledger.answered
    assert _recovered(server) > 0
