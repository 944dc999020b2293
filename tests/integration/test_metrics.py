"""Prometheus metrics at /metrics: creates, latencies, Docker, states, recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from app.config import Settings
from app.engine.client import EngineVersion, EventStream
from app.errors import EngineUnavailableError
from app.main import create_app
from app.metrics import InstrumentedEngine, Metrics
from app.service.context import Context
from app.service.events import EventWatcher
from app.store.db import Database
from app.store.migrate import upgrade
from tests.conftest import TEST_IMAGE, unique_arn

MISSING_IMAGE = "berth-test/no-such-image:never"


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Mapping[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return _samples(answer.text)


def _register(client: TestClient) -> str:
    body = {
        "arn": unique_arn("metrics"),
        "family": "metrics",
        "version": "1",
        "containers": [
            {"name": "main", "image": TEST_IMAGE, "command": ["sleep", "30"]},
            {"name": "ghost", "image": MISSING_IMAGE, "pull_policy": "never"},
        ],
    }
    answer = client.post("/v1/tasks", json=body)
    assert answer.status_code == 201, answer.text
    task_id: str = answer.json()["id"]
    return task_id


def test_creates_are_counted_by_outcome_and_timed(client: TestClient) -> None:
    """A new create, a repeat and a failure each count, with their latency."""
    task_id = _register(client)

    client.post(f"/v1/tasks/{task_id}/containers/main/create")
    client.post(f"/v1/tasks/{task_id}/containers/main/create")
    failed = client.post(f"/v1/tasks/{task_id}/containers/ghost/create")
    samples = _scrape(client)

    assert failed.json()["error_name"] == "ImageNotFoundError"
    creates = "berth_creates_total"
    assert _value(samples, creates, outcome="created", error_name="") == 1
    assert _value(samples, creates, outcome="existing", error_name="") == 1
    failures = _value(
        samples, creates, outcome="failed", error_name="ImageNotFoundError"
    )
    assert failures == 1
    latency = "berth_create_duration_seconds"
    assert _value(samples, f"{latency}_count", outcome="created") == 1
    assert _value(samples, f"{latency}_bucket", outcome="created", le="+Inf") == 1
    assert _value(samples, f"{latency}_sum", outcome="created") > 0


def test_docker_calls_are_timed_by_operation(client: TestClient) -> None:
    """Each Docker operation has its own latency histogram."""
    task_id = _register(client)

    client.post(f"/v1/tasks/{task_id}/containers/main/create")
    samples = _scrape(client)

    docker = "berth_docker_request_duration_seconds"
    for operation in ("create", "inspect", "list"):
        assert _value(samples, f"{docker}_count", operation=operation) >= 1
    assert _value(samples, f"{docker}_bucket", operation="create", le="+Inf") >= 1


def test_containers_are_counted_by_state(client: TestClient) -> None:
    """The state gauge reads the database at scrape time, zeros included."""
    task_id = _register(client)

    client.post(f"/v1/tasks/{task_id}/containers/main/create")
    samples = _scrape(client)

    assert _value(samples, "berth_containers", state="CREATED") == 1
    assert _value(samples, "berth_containers", state="NONE") == 1
    assert ("berth_containers", frozenset({("state", "RUNNING")})) in samples


def test_reconcile_findings_are_counted(client: TestClient) -> None:
    """A reconcile counts itself and each kind of finding."""
    before = _scrape(client)

    client.post("/v1/reconcile")
    after = _scrape(client)

    runs = "berth_reconciles_total"
    assert _value(after, runs) == _value(before, runs) + 1
    for kind in ("adopted", "refreshed", "removed", "orphans"):
        key = ("berth_reconcile_findings_total", frozenset({("kind", kind)}))
        assert key in after


def test_metrics_need_no_token(settings: Settings) -> None:
    """/metrics answers without the API token that /v1 demands."""
    settings = Settings(
        state_dir=settings.state_dir,
        database_url=settings.database_url,
        docker_host=settings.docker_host,
        host_id=settings.host_id,
        api_token=SecretStr("secret-token"),
    )
    upgrade(settings.resolved_database_url)

    with TestClient(create_app(settings)) as client:
        metrics = client.get("/metrics")
        tasks = client.get("/v1/tasks")

    assert metrics.status_code == 200
    assert tasks.status_code == 401
    assert "secret-token" not in metrics.text


def test_each_app_counts_on_its_own() -> None:
    """Two berths in one process do not share counters."""
    first, second = Metrics(), Metrics()

    first.event_reconnects.inc()

    assert b"berth_event_stream_reconnects_total 1.0" in first.exposition()
    assert b"berth_event_stream_reconnects_total 0.0" in second.exposition()


def test_scrape_survives_a_failing_count() -> None:
    """A database that fails during a scrape costs the gauge, not the scrape."""
    metrics = Metrics()

    def broken() -> dict[str, int]:
        raise RuntimeError("database is down")

    metrics.watch_states(broken)

    assert b"berth_reconciles_total" in metrics.exposition()


class _EndingEngine:
    """An engine whose event stream ends at once, as on an engine restart."""

    def version(self) -> EngineVersion:
        return EngineVersion("20.10", "1.41", "1.12")

    def events(self, filters: Mapping[str, Any]) -> EventStream:
        return EventStream(iter(()))

    def list_labelled(self, label: str) -> list[dict[str, Any]]:
        return []

    def ping(self) -> None:
        raise EngineUnavailableError("not in this test")

    def close(self) -> None:
        return None


@pytest.fixture
def ending_context(settings: Settings) -> Iterator[Context]:
    upgrade(settings.resolved_database_url)
    metrics = Metrics()
    engine: Any = InstrumentedEngine(_EndingEngine(), metrics)  # type: ignore[arg-type]
    ctx = Context(
        settings=settings,
        db=Database(settings.resolved_database_url),
        engine=engine,
        metrics=metrics,
    )
    yield ctx
    ctx.db.dispose()


def test_event_stream_reconnects_are_counted(ending_context: Context) -> None:
    """Each lost event stream counts one reconnect."""
    watcher = EventWatcher(ending_context, reconcile_on_start=True)

    watcher.start()
    deadline = time.monotonic() + 10
    while watcher.reconnects < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.stop()
    samples = _samples(ending_context.metrics.exposition().decode())

    assert _value(samples, "berth_event_stream_reconnects_total") >= 2
    assert _value(samples, "berth_reconciles_total") >= 2
    assert (
        _value(
            samples, "berth_docker_request_duration_seconds_count", operation="events"
        )
        >= 2
    )


def test_failed_docker_calls_are_counted() -> None:
    """A Docker call that fails counts under its operation and error name."""
    metrics = Metrics()
    engine = InstrumentedEngine(_EndingEngine(), metrics)  # type: ignore[arg-type]

    with pytest.raises(EngineUnavailableError):
        engine.ping()
    samples = _samples(metrics.exposition().decode())

    errors = "berth_docker_request_errors_total"
    assert (
        _value(samples, errors, operation="ping", error_name="EngineUnavailableError")
        == 1
    )
