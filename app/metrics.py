"""Prometheus metrics: every ``berth_`` series, defined in one place.

Each application gets a registry of its own (made with its context), so two
berths in one process, as in the tests, never count into each other. Labels
take values from small fixed sets only (outcomes, error names, operations,
states): never a task ARN, a container name or a Docker ID, so a scrape
says nothing about the workloads and the series stay few.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel

from app.engine.client import Engine, EngineVersion, EventStream
from app.errors import BerthError

T = TypeVar("T")

log = structlog.get_logger(__name__)

# A create is a few Docker calls and two commits: tens of milliseconds on a
# quiet host, seconds when the engine is busy, minutes when it pulls.
CREATE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

# One Docker call: a millisecond for an inspect on a quiet engine, up to
# the client timeout (30 s by default) when it hangs.
DOCKER_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip

# What a failure that is not one of berth's named errors is counted as.
UNEXPECTED = "InternalError"


@dataclass
class CreateAttempt:
    """Filled in by the code being timed: did this call create anything?"""

    created: bool = False


class _StateCollector(Collector):
    """``berth_containers``, read from the database at scrape time.

    Counting at scrape time, instead of keeping gauges in step with every
    write, cannot drift: the database is the truth, and the query is one
    indexed GROUP BY.
    """

    def __init__(self, count: Callable[[], Mapping[str, int]]) -> None:
        self._count = count

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "berth_containers",
            "Containers of this host's tasks, by berth state",
            labels=["state"],
        )
        try:
            counts = self._count()
        except Exception as exc:  # noqa: BLE001 - a scrape must outlive the database
            log.warning("metrics.count_failed", error=type(exc).__name__)
            counts = {}
        for state, number in sorted(counts.items()):
            family.add_metric([state], number)
        yield family


class Metrics:
    """The registry of one berth and the series it exposes."""

    def __init__(self) -> None:
        # The ``*_created`` timestamp series double every counter for
        # nothing a dashboard of berth reads. (A switch of the library's,
        # for the whole process.)
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry

        self.creates = Counter(
            "berth_creates",
            "Container creates, by outcome (created, existing, failed) and error name",
            ["outcome", "error_name"],
            registry=registry,
        )
        self.create_seconds = Histogram(
            "berth_create_duration_seconds",
            "Time to answer a container create, waiting for its lock included",
            ["outcome"],
            buckets=CREATE_BUCKETS,
            registry=registry,
        )
        self.docker_seconds = Histogram(
            "berth_docker_request_duration_seconds",
            "Time of one call to the Docker engine, by operation",
            ["operation"],
            buckets=DOCKER_BUCKETS,
            registry=registry,
        )
        self.docker_errors = Counter(
            "berth_docker_request_errors",
            "Docker calls that failed, by operation and error name",
            ["operation", "error_name"],
            registry=registry,
        )
        self.reconciles = Counter(
            "berth_reconciles", "Reconciles run", registry=registry
        )
        self.reconcile_findings = Counter(
            "berth_reconcile_findings",
            "Containers a reconcile adopted, refreshed, removed, found "
            "orphaned, made retryable or could not inspect",
            ["kind"],
            registry=registry,
        )
        self.event_reconnects = Counter(
            "berth_event_stream_reconnects",
            "Times the engine's event stream was lost and subscribed again",
            registry=registry,
        )
        self.event_stream_connected = Gauge(
            "berth_event_stream_connected",
            "1 while berth is subscribed to the engine's events",
            registry=registry,
        )

    def watch_states(self, count: Callable[[], Mapping[str, int]]) -> None:
        """Expose ``berth_containers`` from ``count``, called at each scrape."""
        self.registry.register(_StateCollector(count))

    @contextmanager
    def create_attempt(self) -> Iterator[CreateAttempt]:
        """Count and time one create; the block sets ``created``."""
        attempt = CreateAttempt()
        started = time.perf_counter()
        try:
            yield attempt
        except BerthError as exc:
            self._created("failed", exc.error_name, started)
            raise
        except Exception:
            self._created("failed", UNEXPECTED, started)
            raise
        outcome = "created" if attempt.created else "existing"
        self._created(outcome, "", started)

    def _created(self, outcome: str, error_name: str, started: float) -> None:
        self.create_seconds.labels(outcome).observe(time.perf_counter() - started)
        self.creates.labels(outcome, error_name).inc()

    def reconciled(self, report: BaseModel) -> None:
        """Count one reconcile and what it found: each list of its report."""
        self.reconciles.inc()
        for kind, found in report:
            if isinstance(found, list):
                self.reconcile_findings.labels(kind).inc(len(found))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class InstrumentedEngine:
    """An :class:`Engine` that times every call it passes on.

    It wraps whatever engine it is given (the real one, or a test's), so the
    hot path pays one clock read and one histogram update per Docker call:
    microseconds beside a call that takes milliseconds. The time includes
    any wait for a free connection, as the caller experiences it. It
    spells out every method of the interface, with no pass-through, so
    that a method added to :class:`Engine` is a type error here until it
    is timed too.
    """

    def __init__(self, engine: Engine, metrics: Metrics) -> None:
        self.inner = engine
        self._seconds = metrics.docker_seconds
        self._errors = metrics.docker_errors

    def _timed(self, operation: str, call: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        try:
            return call(*args)
        except BerthError as exc:
            self._errors.labels(operation, exc.error_name).inc()
            raise
        finally:
            self._seconds.labels(operation).observe(time.perf_counter() - started)

    def version(self) -> EngineVersion:
        # Not timed: after the first call it is an answer from memory.
        return self.inner.version()

    def ping(self) -> None:
        self._timed("ping", self.inner.ping)

    def create(
        self, name: str, body: Mapping[str, Any], api_version: str | None = None
    ) -> str:
        return self._timed("create", self.inner.create, name, body, api_version)

    def inspect(self, ref: str) -> dict[str, Any] | None:
        return self._timed("inspect", self.inner.inspect, ref)

    def start(self, ref: str) -> None:
        self._timed("start", self.inner.start, ref)

    def stop(self, ref: str, timeout: int) -> None:
        self._timed("stop", self.inner.stop, ref, timeout)

    def remove(self, ref: str) -> bool:
        return self._timed("remove", self.inner.remove, ref)

    def remove_volume(self, name: str) -> bool:
        return self._timed("remove_volume", self.inner.remove_volume, name)

    def list_labelled(self, *labels: str) -> list[dict[str, Any]]:
        return self._timed("list", self.inner.list_labelled, *labels)

    def events(self, filters: Mapping[str, Any]) -> EventStream:
        # Times the subscription only; the stream itself lasts for hours.
        return self._timed("events", self.inner.events, filters)

    def image_present(self, image: str) -> bool:
        return self._timed("inspect_image", self.inner.image_present, image)

    def pull(self, image: str, auth: Mapping[str, str] | None, timeout: float) -> None:
        self._timed("pull", self.inner.pull, image, auth, timeout)

    def close(self) -> None:
        self.inner.close()
