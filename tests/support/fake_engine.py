"""A fake of berth's own :class:`app.engine.client.Engine` interface.

Not of docker-py: it keeps containers in a dict, counts every call, and
lets a test script the faults a real engine cannot be made to produce on
demand (a name held with no container behind it, say). Every call that
takes a container reference refuses an empty one, as the real adapter
does, and records it.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from app.engine.client import EngineVersion, NameInUseError

ZERO_TIME = "0001-01-01T00:00:00Z"


class FakeStream:
    """An event stream that a test feeds, and ends, by hand."""

    _END = object()

    def __init__(self) -> None:
        self._events: queue.Queue[object] = queue.Queue()

    def put(self, event: dict[str, Any]) -> None:
        self._events.put(event)

    def end(self) -> None:
        """What docker-py does when the engine restarts: just stop."""
        self._events.put(self._END)

    def close(self) -> None:
        self.end()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while (event := self._events.get()) is not self._END:
            assert isinstance(event, dict)
            yield event


class FakeEngine:
    """Containers in memory; ``fail`` and ``hooks`` script the faults."""

    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.refs: list[str] = []
        self.streams: list[FakeStream] = []
        # call name -> exceptions to raise, one per call, in order
        self.fail: dict[str, list[BaseException]] = {}
        # call name -> functions run before the call does its work
        self.hooks: dict[str, list[Callable[..., None]]] = {}
        # names the engine claims are in use with no container behind them
        self.reserved: set[str] = set()
        self._guard = threading.Lock()

    # -- scripting ---------------------------------------------------------

    def add(
        self,
        name: str,
        labels: Mapping[str, str],
        status: str = "created",
        exit_code: int = 0,
    ) -> str:
        """Put a container on the fake engine, as if someone made it."""
        docker_id = uuid.uuid4().hex + uuid.uuid4().hex
        self.containers[docker_id] = {
            "Id": docker_id,
            "Name": "/" + name,
            "Created": "2024-01-01T00:00:00Z",
            "Config": {"Labels": dict(labels)},
            "State": _state(status, exit_code),
            "NetworkSettings": {"Ports": {}},
            "Mounts": [],
        }
        return docker_id

    def set_state(
        self,
        docker_id: str,
        status: str,
        exit_code: int = 0,
        *,
        started: str | None = None,
        finished: str | None = None,
        error: str = "",
    ) -> None:
        """Change the container's state; times default to the fixed ones."""
        state = _state(status, exit_code)
        if started is not None:
            state["StartedAt"] = started
        if finished is not None:
            state["FinishedAt"] = finished
        state["Error"] = error
        self.containers[docker_id]["State"] = state

    def rename(self, docker_id: str, name: str) -> None:
        self.containers[docker_id]["Name"] = "/" + name

    def _run(self, call: str, *args: Any) -> None:
        with self._guard:
            self.calls[call] += 1
            failures = self.fail.get(call)
            failure = failures.pop(0) if failures else None
        for hook in self.hooks.get(call, []):
            hook(*args)
        if failure is not None:
            raise failure

    def _ref(self, ref: str) -> None:
        self.refs.append(ref)
        if not ref or not ref.strip():
            raise ValueError("a Docker call needs a container ID or name")

    def _find(self, ref: str) -> dict[str, Any] | None:
        for doc in self.containers.values():
            if doc["Id"] == ref or doc["Name"] == "/" + ref:
                return doc
        return None

    def by_labels(self, **wanted: str) -> list[dict[str, Any]]:
        return [
            d
            for d in self.containers.values()
            if all(d["Config"]["Labels"].get(k) == v for k, v in wanted.items())
        ]

    # -- the Engine interface ---------------------------------------------

    def version(self) -> EngineVersion:
        self._run("version")
        return EngineVersion("20.10.24", "1.41", "1.12")

    def ping(self) -> None:
        self._run("ping")

    def create(
        self, name: str, body: Mapping[str, Any], api_version: str | None = None
    ) -> str:
        self._run("create", name, body)
        if name in self.reserved or self._find(name) is not None:
            raise NameInUseError(f"Conflict. The container name /{name} is in use")
        return self.add(name, body.get("Labels") or {})

    def inspect(self, ref: str) -> dict[str, Any] | None:
        self._ref(ref)
        self._run("inspect", ref)
        doc = self._find(ref)
        return dict(doc) if doc is not None else None

    def start(self, ref: str) -> None:
        self._ref(ref)
        self._run("start", ref)

    def stop(self, ref: str, timeout: int) -> None:
        self._ref(ref)
        self._run("stop", ref)

    def remove(self, ref: str) -> bool:
        self._ref(ref)
        self._run("remove", ref)
        doc = self._find(ref)
        if doc is None:
            return False
        del self.containers[doc["Id"]]
        return True

    def remove_volume(self, name: str) -> bool:
        self._ref(name)
        self._run("remove_volume", name)
        return False

    def list_labelled(self, *labels: str) -> list[dict[str, Any]]:
        self._run("list_labelled", *labels)
        return [_listed(d) for d in self.containers.values() if _has(d, labels)]

    def events(self, filters: Mapping[str, Any]) -> FakeStream:
        self._run("events", filters)
        stream = FakeStream()
        self.streams.append(stream)
        return stream

    def image_present(self, image: str) -> bool:
        self._run("image_present", image)
        return True

    def pull(self, image: str, auth: Mapping[str, str] | None, timeout: float) -> None:
        self._run("pull", image)

    def close(self) -> None:
        self._run("close")


def _state(status: str, exit_code: int) -> dict[str, Any]:
    running = status == "running"
    finished = "2024-01-01T00:01:00Z" if status == "exited" else ZERO_TIME
    return {
        "Status": status,
        "Running": running,
        "ExitCode": exit_code,
        "StartedAt": "2024-01-01T00:00:30Z" if status != "created" else ZERO_TIME,
        "FinishedAt": finished,
        "OOMKilled": False,
        "Error": "",
    }


def _has(doc: Mapping[str, Any], labels: tuple[str, ...]) -> bool:
    have = doc["Config"]["Labels"]
    for label in labels:
        key, sep, value = label.partition("=")
        if key not in have or (sep and have[key] != value):
            return False
    return True


def human_duration(seconds: float) -> str:
    """Docker's words for a duration: go-units' HumanDuration, ported."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = whole // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    # Go's Duration.Round rounds halves away from zero.
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def _ago(docker_time: str) -> str:
    then = datetime.fromisoformat(docker_time.replace("Z", "+00:00"))
    return human_duration((datetime.now(UTC) - then).total_seconds())


def status_text(state: Mapping[str, Any]) -> str:
    """The list entry's Status, counted back from now as Docker does."""
    if state["Status"] == "running":
        return f"Up {_ago(state['StartedAt'])}"
    if state["StartedAt"] == ZERO_TIME:
        return "Created"
    if state["Status"] == "exited":
        return f"Exited ({state['ExitCode']}) {_ago(state['FinishedAt'])} ago"
    return str(state["Status"])


def _listed(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The list entry Docker gives for a container, as far as berth reads it."""
    state = doc["State"]
    status = status_text(state)
    return {
        "Id": doc["Id"],
        "Names": [doc["Name"]],
        "Created": 1704067200,
        "Labels": dict(doc["Config"]["Labels"]),
        "State": state["Status"],
        "Status": status,
    }


def fake_context(settings: Any) -> tuple[Any, FakeEngine]:
    """berth's service context on a migrated SQLite file and a fake engine."""
    from app.service.context import Context
    from app.store.db import Database
    from app.store.migrate import upgrade

    upgrade(settings.resolved_database_url)
    engine = FakeEngine()
    ctx = Context(
        settings=settings, db=Database(settings.resolved_database_url), engine=engine
    )
    return ctx, engine


def register(ctx: Any, arn: str, *names: str) -> str:
    """Register a task of busybox containers; returns its ID."""
    from app.service.spec import TaskSpec
    from app.service.tasks import register_task

    spec = TaskSpec.model_validate(
        {
            "arn": arn,
            "family": "fake",
            "version": "1",
            "containers": [
                {"name": n, "image": "busybox", "command": ["true"]}
                for n in names or ("main",)
            ],
        }
    )
    view, _ = register_task(ctx, spec)
    return view.id


def set_row(ctx: Any, task_id: str, name: str, **values: Any) -> None:
    """Put a container's row in a state a test needs (a name with no ID,
    another host's container): what a crash or an older berth left."""
    from app.store import repo

    with ctx.db.transaction() as session:
        row = repo.get_container(session, task_id, name)
        assert row is not None
        repo.update_container(session, row.id, **values)
