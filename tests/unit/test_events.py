"""The event watcher on a fake of berth's Engine interface: reconnects,
catches up, and never takes "could not inspect" for "stopped"."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from app.config import Settings
from app.errors import CannotInspectContainerError, EngineUnavailableError
from app.service import events as events_module
from app.service.create import container_lock, create_container, creating_under
from app.service.events import EventWatcher
from app.service.observe import is_stale
from app.service.tasks import get_container
from app.service.views import State
from app.store import repo
from app.store.models import ContainerRow
from tests.conftest import unique_arn
from tests.support.fake_engine import FakeEngine, fake_context, register, set_row

LABEL = "com.amazonaws.ecs."


@pytest.fixture
def fake(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeEngine]:
    monkeypatch.setattr(events_module, "FIRST_BACKOFF_S", 0.01)
    return fake_context(settings)


@pytest.fixture
def watcher(fake: tuple[Any, FakeEngine]) -> Iterator[EventWatcher]:
    ctx, _ = fake
    watcher = EventWatcher(ctx)
    yield watcher
    watcher.stop()


def _event(action: str, docker_id: str, **attributes: str) -> dict[str, Any]:
    return {
        "Type": "container",
        "Action": action,
        "Actor": {"ID": docker_id, "Attributes": attributes},
    }


def _labels(arn: str, host: str, name: str = "main") -> dict[str, str]:
    """The labels berth stamps, which an event's attributes carry too."""
    return {
        LABEL + "task-arn": arn,
        LABEL + "container-name": name,
        "io.berth.host-id": host,
    }


def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_an_ended_stream_is_reconnected_and_followed_by_a_reconcile(
    fake: Any, watcher: EventWatcher
) -> None:
    """The stream just ends (engine restart): subscribe again, reconcile."""
    _, engine = fake
    watcher.start()
    _until(lambda: len(engine.streams) == 1 and engine.calls["list_labelled"] == 1)

    engine.streams[0].end()

    _until(lambda: len(engine.streams) == 2 and engine.calls["list_labelled"] == 2)
    assert watcher.reconnects == 1


def test_a_catch_up_that_fails_is_retried_with_the_connection(
    fake: Any, watcher: EventWatcher
) -> None:
    """The engine is back but cannot list yet: subscribe and reconcile again."""
    _, engine = fake
    watcher.start()
    _until(lambda: len(engine.streams) == 1 and watcher.connected.is_set())
    engine.fail["list_labelled"] = [EngineUnavailableError("starting")]

    engine.streams[0].end()

    _until(lambda: len(engine.streams) == 3 and watcher.connected.is_set())
    assert engine.calls["list_labelled"] == 3
    assert watcher.reconnects == 2


def test_an_engine_still_down_is_retried_until_it_answers(
    fake: Any, watcher: EventWatcher
) -> None:
    """Subscriptions that fail are retried; the first success reconciles."""
    _, engine = fake
    engine.fail["events"] = [EngineUnavailableError("down")] * 3

    watcher.start()

    _until(lambda: engine.calls["list_labelled"] == 1)
    assert engine.calls["events"] == 4


def test_a_kill_seen_in_the_stream_stops_the_row(
    fake: Any, watcher: EventWatcher
) -> None:
    """die: the row is STOPPED with the exit code the engine reports."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    watcher.start()
    _until(lambda: bool(engine.streams))

    engine.set_state(view.docker_id, "exited", 137)
    engine.streams[0].put(_event("die", view.docker_id, exitCode="137"))

    _until(lambda: get_container(ctx, task_id, "main").status == State.STOPPED)
    assert get_container(ctx, task_id, "main").exit_code == 137


def test_an_event_that_cannot_be_recorded_does_not_cost_the_stream(
    fake: Any, watcher: EventWatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that conflicts with another row is skipped; the next event
    on the same stream is still applied, with no reconnect."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    original = watcher._apply
    conflicts = [IntegrityError("UPDATE", {}, Exception("unique docker_name"))]

    def apply_once_conflicting(*args: Any, **kwargs: Any) -> None:
        if conflicts:
            raise conflicts.pop()
        original(*args, **kwargs)

    monkeypatch.setattr(watcher, "_apply", apply_once_conflicting)
    watcher.start()
    _until(watcher.connected.is_set)

    engine.streams[0].put(_event("start", view.docker_id))
    engine.set_state(view.docker_id, "exited", 137)
    engine.streams[0].put(_event("die", view.docker_id, exitCode="137"))

    _until(lambda: get_container(ctx, task_id, "main").status == State.STOPPED)
    assert conflicts == []
    assert len(engine.streams) == 1 and watcher.reconnects == 0


def test_a_die_that_cannot_be_inspected_uses_the_events_exit_code(
    fake: Any, watcher: EventWatcher
) -> None:
    """The event itself says it died, and with which code."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.fail["inspect"] = [CannotInspectContainerError("boom")]

    watcher.handle(_event("die", view.docker_id, exitCode="3"))

    after = get_container(ctx, task_id, "main")
    assert (after.status, after.exit_code) == (State.STOPPED, 3)


def test_an_inspect_that_fails_is_unknown_not_stopped(
    fake: Any, watcher: EventWatcher
) -> None:
    """kill, then no inspect: the row keeps its state, not STOPPED."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.set_state(view.docker_id, "running")
    watcher.handle(_event("start", view.docker_id))
    engine.fail["inspect"] = [CannotInspectContainerError("boom")]

    watcher.handle(_event("kill", view.docker_id, signal="15"))

    assert get_container(ctx, task_id, "main").status == State.RUNNING


def test_destroy_marks_the_row_removed(fake: Any, watcher: EventWatcher) -> None:
    """destroy: REMOVED without asking the engine anything."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.calls.clear()

    watcher.handle(_event("destroy", view.docker_id))

    assert get_container(ctx, task_id, "main").status == State.REMOVED
    assert engine.calls["inspect"] == 0


def test_a_create_event_adopts_a_row_waiting_on_that_name(
    fake: Any, watcher: EventWatcher, host_id: str
) -> None:
    """The late answer to a timed-out create stores the ID at once."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    set_row(ctx, task_id, "main", docker_name="ecs-late", status=State.CREATING)
    labels = _labels(arn, host_id)
    docker_id = engine.add("ecs-late", labels)

    watcher.handle(_event("create", docker_id, name="ecs-late", **labels))

    after = get_container(ctx, task_id, "main")
    assert (after.status, after.docker_id) == (State.CREATED, docker_id)


def test_a_create_event_during_its_own_create_is_left_to_the_create(
    fake: Any, watcher: EventWatcher, host_id: str
) -> None:
    """The create in flight stores the ID itself; the watcher keeps out."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    labels = _labels(arn, host_id)
    set_row(ctx, task_id, "main", docker_name="ecs-now")
    docker_id = engine.add("ecs-now", labels)

    with container_lock(ctx, task_id, "main"):
        watcher.handle(_event("create", docker_id, name="ecs-now", **labels))

    assert get_container(ctx, task_id, "main").docker_id is None
    assert engine.calls["inspect"] == 0


def test_a_create_event_under_a_name_being_created_reads_no_row(
    fake: Any, watcher: EventWatcher, host_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every create sends the watcher a create event for the name it is
    creating under; that one is left to the create without a database read."""
    ctx, engine = fake
    arn = unique_arn()
    labels = _labels(arn, host_id)
    docker_id = engine.add("ecs-busy", labels)
    looked_up: list[str] = []
    monkeypatch.setattr(
        repo,
        "find_container_by_docker_name",
        lambda *args: looked_up.append(args[-1]),
    )

    with creating_under(ctx, "ecs-busy"):
        watcher.handle(_event("create", docker_id, name="ecs-busy", **labels))
    watcher.handle(_event("create", docker_id, name="ecs-busy", **labels))

    assert looked_up == ["ecs-busy"]


def test_a_create_event_for_someone_elses_labels_is_ignored(
    fake: Any, watcher: EventWatcher
) -> None:
    """Same name, other task's labels: the row is not touched."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    set_row(ctx, task_id, "main", docker_name="ecs-late")
    labels = {LABEL + "task-arn": unique_arn(), LABEL + "container-name": "main"}
    docker_id = engine.add("ecs-late", labels)

    watcher.handle(_event("create", docker_id, name="ecs-late", **labels))

    assert get_container(ctx, task_id, "main").docker_id is None


def _doc(docker_id: str, running: bool, started: str, finished: str) -> dict[str, Any]:
    return {
        "Id": docker_id,
        "State": {
            "Status": "running" if running else "exited",
            "Running": running,
            "StartedAt": started,
            "FinishedAt": finished,
            "ExitCode": 0 if running else 137,
        },
    }


def test_an_inspect_older_than_the_row_is_stale() -> None:
    """Running as of 10:00 does not overwrite exited as of 10:05."""
    from app.service.observe import observed

    row = ContainerRow(docker_id="abc", status=State.RUNNING, meta=None)
    exited = _doc("abc", False, "2024-01-01T10:00:00Z", "2024-01-01T10:05:00Z")
    row.meta = observed(row, exited)["meta"]
    row.status = State.STOPPED
    running = _doc("abc", True, "2024-01-01T10:00:00Z", "0001-01-01T00:00:00Z")
    restarted = _doc("abc", True, "2024-01-01T10:06:00Z", "2024-01-01T10:05:00Z")

    assert is_stale(row, running)
    assert not is_stale(row, restarted)
    assert not is_stale(row, exited)


def test_a_create_event_for_another_hosts_container_is_ignored(
    fake: Any, watcher: EventWatcher
) -> None:
    """Same name, same task's labels, another host's ID: not adopted."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    set_row(ctx, task_id, "main", docker_name="ecs-late", status=State.CREATING)
    labels = _labels(arn, "another-host")
    docker_id = engine.add("ecs-late", labels)

    watcher.handle(_event("create", docker_id, name="ecs-late", **labels))

    assert get_container(ctx, task_id, "main").docker_id is None


def test_the_watcher_subscribes_to_this_hosts_containers_only(
    fake: Any, watcher: EventWatcher, host_id: str
) -> None:
    """The stream is filtered by the task label and this host's label."""
    _, engine = fake
    filters: list[Any] = []
    engine.hooks["events"] = [filters.append]

    watcher.start()
    _until(lambda: bool(filters))

    assert filters[0]["label"] == [LABEL + "task-arn", f"io.berth.host-id={host_id}"]


def test_a_rename_seen_in_the_stream_renames_the_row(
    fake: Any, watcher: EventWatcher
) -> None:
    """rename: the row takes the engine's new name, and is found by it."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.rename(view.docker_id, "renamed-by-hand")

    watcher.handle(
        _event(
            "rename",
            view.docker_id,
            name="renamed-by-hand",
            oldName=f"/{view.docker_name}",
        )
    )

    assert get_container(ctx, task_id, "main").docker_name == "renamed-by-hand"
