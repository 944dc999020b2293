"""Logs: JSON lines off a terminal, one event per state change, request IDs."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest

from tests.conftest import TEST_IMAGE, remove_labelled, unique_arn
from tests.support.server import BerthServer

TOKEN = "log-test-token-5f2c9a"
STATE_FIELDS = {"task_arn", "container", "docker_name", "docker_id", "elapsed_ms"}


@dataclass(frozen=True)
class Session:
    """What one served berth wrote while a client drove it."""

    output: str
    request_ids: dict[str, str]


@pytest.fixture(scope="module")
def session(
    tmp_path_factory: pytest.TempPathFactory, docker_api: docker.APIClient
) -> Iterator[Session]:
    """One berth, driven once, for every test of the served output."""
    state = tmp_path_factory.mktemp("logs")
    host_id = f"test-logs-{uuid.uuid4().hex[:12]}"
    env = {
        "BERTH_STATE_DIR": str(state),
        "BERTH_HOST_ID": host_id,
        "BERTH_API_TOKEN": TOKEN,
        "BERTH_LOG_FORMAT": "auto",
    }
    berth = BerthServer(env, state / "berth.log").start()
    try:
        ids = _drive(berth)
    finally:
        berth.stop()
        remove_labelled(docker_api, host_id)
    yield Session(berth.output(), ids)


def _drive(server: BerthServer) -> dict[str, str]:
    """A session with successes and errors; the request ID of each step."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    spec = {
        "arn": unique_arn("logs"),
        "family": "logs",
        "version": "1",
        "containers": [
            {"name": "main", "image": TEST_IMAGE, "command": ["sleep", "30"]},
            {"name": "ghost", "image": "berth-test/none:x", "pull_policy": "never"},
        ],
    }
    ids = {}
    with server.client() as http:
        ids["unauthorized"] = http.get("/v1/tasks").headers["x-request-id"]
        http.headers.update(auth)
        ids["invalid"] = http.post("/v1/tasks", json={}).headers["x-request-id"]
        ids["missing"] = http.get("/v1/tasks/nope").headers["x-request-id"]
        http.put("/v1/tasks")
        task = http.post("/v1/tasks", json=spec).json()
        base = f"/v1/tasks/{task['id']}/containers"
        ids["create"] = http.post(f"{base}/main/create").headers["x-request-id"]
        http.post(f"{base}/ghost/create")
        http.post(f"{base}/main/start")
        http.get("/metrics")
        http.delete(f"/v1/tasks/{task['id']}", params={"timeout": 0})
    return ids


def _parse(lines: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    parsed: list[dict[str, Any]] = []
    bad: list[str] = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict):
            parsed.append(value)
        else:
            bad.append(line)
    return parsed, bad


def test_server_output_is_json_lines(session: Session) -> None:
    """Off a terminal, every line the server writes is one JSON object."""
    lines = [line for line in session.output.splitlines() if line.strip()]

    parsed, bad = _parse(lines)

    assert len(lines) >= 20
    assert len(parsed) >= 0.9 * len(lines)
    assert bad == [], "lines that are not JSON objects:\n" + "\n".join(bad)
    assert all("event" in line and "level" in line for line in parsed)
    loggers = {line.get("logger") for line in parsed}
    assert {"uvicorn.error", "uvicorn.access", "alembic.runtime.migration"} <= loggers


def test_every_line_of_a_request_carries_its_id(session: Session) -> None:
    """Access lines and the lines a request logs carry its request ID."""
    ids = session.request_ids

    parsed, _ = _parse(session.output.splitlines())
    requests = [line for line in parsed if line["event"] == "http.request"]
    created = [line for line in parsed if line["event"] == "container.created"]

    assert len(requests) >= 9
    assert all(line.get("request_id") for line in requests)
    assert {r["status"] for r in requests} >= {200, 201, 401, 404, 405, 422}
    assert [line["request_id"] for line in created] == [ids["create"]]
    access = [line for line in requests if line["request_id"] == ids["invalid"]]
    assert [(line["method"], line["status"]) for line in access] == [("POST", 422)]


def test_state_changes_have_one_event_with_fields(session: Session) -> None:
    """Create, start and remove each log one named event with its fields."""
    parsed, _ = _parse(session.output.splitlines())

    by_event = {line["event"]: line for line in parsed}

    for event in ("container.created", "container.started", "container.removed"):
        assert set(by_event[event]) >= STATE_FIELDS, event
        assert by_event[event]["container"] == "main"
    failed = by_event["container.create_failed"]
    assert failed["error_name"] == "ImageNotFoundError"
    assert failed["level"] == "warning"


def test_token_never_reaches_the_log(session: Session) -> None:
    """The bearer token that every request sent is not in the output."""
    assert TOKEN not in session.output


def _log_through(stderr: int, fmt: str) -> None:
    script = (
        "import logging, structlog\n"
        "from app.logs import configure\n"
        f"configure('INFO', {fmt!r})\n"
        "structlog.get_logger('t').info('container.created', docker_id='abc')\n"
        "logging.getLogger('uvicorn.error').info('Started server process')\n"
    )
    subprocess.run(
        [sys.executable, "-c", script],
        stderr=stderr,
        check=True,
        timeout=30,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_terminal_gets_readable_lines() -> None:
    """On a terminal the same events are readable text, not JSON."""
    main, secondary = pty.openpty()

    _log_through(secondary, "auto")
    os.close(secondary)
    output = _read_all(main).decode()

    assert "container.created" in output
    assert "docker_id=abc" in output
    assert "Started server process" in output
    _, bad = _parse([line for line in output.splitlines() if line.strip()])
    assert len(bad) == 2


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def test_json_can_be_forced_on_a_terminal() -> None:
    """BERTH_LOG_FORMAT=json writes JSON even where a terminal would get text."""
    main, secondary = pty.openpty()

    _log_through(secondary, "json")
    os.close(secondary)
    output = _read_all(main).decode()

    parsed, bad = _parse([line for line in output.splitlines() if line.strip()])
    assert bad == []
    assert [line["event"] for line in parsed] == [
        "container.created",
        "Started server process",
    ]
