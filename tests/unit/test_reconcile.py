"""Recovery against a fake of berth's Engine interface: what it decides, and
how few calls it makes to decide it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.config import Settings
from app.errors import CannotInspectContainerError
from app.service.create import create_container
from app.service.lifecycle import delete_task, refresh
from app.service.reconcile import reconcile
from app.service.tasks import find_owner, get_container
from app.service.views import State
from app.store import repo
from tests.conftest import unique_arn
from tests.support.fake_engine import FakeEngine, fake_context, register, set_row

LABEL = "com.amazonaws.ecs."


@pytest.fixture
def fake(settings: Settings) -> tuple[Any, FakeEngine]:
    return fake_context(settings)


def _labels(arn: str, name: str, host: str) -> dict[str, str]:
    return {
        LABEL + "task-arn": arn,
        LABEL + "container-name": name,
        "io.berth.host-id": host,
    }


def _ecs_only(arn: str, name: str) -> dict[str, str]:
    """What an ECS agent (or another tool) stamps: no berth host label."""
    return {LABEL + "task-arn": arn, LABEL + "container-name": name}


def _ago(seconds: float) -> str:
    """A Docker time that many seconds before now."""
    then = datetime.now(UTC) - timedelta(seconds=seconds)
    return then.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _name_only(ctx: Any, task_id: str, name: str, docker_name: str) -> None:
    """The state a crash right after the name commit leaves behind."""
    set_row(ctx, task_id, name, docker_name=docker_name, status=State.CREATING)


def test_rows_in_step_cost_one_list_and_no_inspect(fake: Any) -> None:
    """Twenty rows that agree with the engine: one list call, not one inspect."""
    ctx, engine = fake
    names = [f"c{i}" for i in range(20)]
    task_id = register(ctx, unique_arn(), *names)
    for name in names:
        create_container(ctx, task_id, name)
    engine.calls.clear()

    report = reconcile(ctx)

    assert engine.calls == {"list_labelled": 1}
    assert report.refreshed == [] and report.removed == [] and report.orphans == []


def test_only_the_rows_that_moved_are_inspected(fake: Any) -> None:
    """One of three containers exited behind berth's back: one inspect."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn(), "a", "b", "c")
    views = [create_container(ctx, task_id, n)[0] for n in ("a", "b", "c")]
    engine.set_state(views[1].docker_id, "exited", 3)
    engine.calls.clear()

    report = reconcile(ctx)

    assert engine.calls == {"list_labelled": 1, "inspect": 1}
    assert report.refreshed == [views[1].docker_name]
    after = get_container(ctx, task_id, "b")
    assert (after.status, after.exit_code) == (State.STOPPED, 3)


def test_an_exit_code_that_changed_while_nobody_listened_is_refreshed(
    fake: Any,
) -> None:
    """Exited, ran again, exited again with another code: not stale."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.set_state(view.docker_id, "exited", 0)
    reconcile(ctx)
    engine.set_state(view.docker_id, "exited", 137)

    report = reconcile(ctx)

    assert report.refreshed == [view.docker_name]
    assert get_container(ctx, task_id, "main").exit_code == 137


def test_a_container_gone_from_the_engine_is_removed(fake: Any) -> None:
    """No entry in the list for a row's ID: the row becomes REMOVED."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.containers.clear()

    report = reconcile(ctx)

    assert report.removed == [view.docker_name]
    assert get_container(ctx, task_id, "main").status == State.REMOVED


def test_a_failed_inspect_is_unknown_and_changes_nothing(fake: Any) -> None:
    """The engine lists it as exited but will not inspect it: row kept."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.set_state(view.docker_id, "exited", 1)
    engine.fail["inspect"] = [CannotInspectContainerError("boom")]

    report = reconcile(ctx)

    assert report.unknown == [view.docker_name]
    after = get_container(ctx, task_id, "main")
    assert (after.status, after.docker_id) == (State.CREATED, view.docker_id)


def test_a_name_left_by_a_crash_is_adopted_when_docker_made_it(
    fake: Any, host_id: str
) -> None:
    """CREATING with a stored name, and the engine has it: adopt the ID."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    _name_only(ctx, task_id, "main", "ecs-fake-1-main-abc")
    docker_id = engine.add("ecs-fake-1-main-abc", _labels(arn, "main", host_id))

    report = reconcile(ctx)

    assert report.adopted == ["ecs-fake-1-main-abc"]
    after = get_container(ctx, task_id, "main")
    assert (after.status, after.docker_id) == (State.CREATED, docker_id)


def test_a_name_left_by_a_crash_is_retryable_when_docker_never_made_it(
    fake: Any,
) -> None:
    """CREATING, nothing on the engine: NONE, and the name is kept."""
    ctx, _ = fake
    task_id = register(ctx, unique_arn())
    _name_only(ctx, task_id, "main", "ecs-fake-1-main-abc")

    report = reconcile(ctx)

    assert report.retryable == ["ecs-fake-1-main-abc"]
    after = get_container(ctx, task_id, "main")
    assert (after.status, after.docker_name) == (State.NONE, "ecs-fake-1-main-abc")


def test_ours_under_an_older_name_is_adopted_by_its_labels(
    fake: Any, host_id: str
) -> None:
    """The row's name moved on, but a container with its labels exists."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    _name_only(ctx, task_id, "main", "ecs-fake-1-main-new")
    docker_id = engine.add("ecs-fake-1-main-old", _labels(arn, "main", host_id))

    report = reconcile(ctx)

    assert report.adopted == ["ecs-fake-1-main-new"]
    after = get_container(ctx, task_id, "main")
    assert (after.docker_id, after.docker_name) == (docker_id, "ecs-fake-1-main-old")


def test_orphans_are_reported_and_removed_only_when_asked(
    fake: Any, host_id: str
) -> None:
    """A labelled container with no row: reported; removed on request."""
    ctx, engine = fake
    orphan = engine.add("stranger", _labels(unique_arn(), "x", host_id))
    engine.add("elsewhere", _labels(unique_arn(), "x", "another-host"))

    kept = reconcile(ctx)
    removed = reconcile(ctx, remove_orphans=True)

    assert kept.orphans == ["stranger"] and kept.orphans_removed == []
    assert removed.orphans_removed == ["stranger"]
    assert orphan not in engine.containers
    assert len(engine.containers) == 1


def test_a_duplicate_of_a_created_container_is_an_orphan(
    fake: Any, host_id: str
) -> None:
    """Two containers with one row's labels: the row's own one stays."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    view, _ = create_container(ctx, task_id, "main")
    duplicate = engine.add("duplicate", _labels(arn, "main", host_id))

    report = reconcile(ctx, remove_orphans=True)

    assert report.orphans_removed == ["duplicate"]
    assert duplicate not in engine.containers
    assert view.docker_id in engine.containers


def test_a_create_landing_during_reconcile_is_not_undone(
    fake: Any, host_id: str
) -> None:
    """A row that gains its ID while reconcile runs keeps it, not NONE."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    _name_only(ctx, task_id, "main", "ecs-fake-1-main-abc")
    landed: list[str] = []

    def create_lands(*_filters: str) -> None:
        # The create in flight stores its ID after reconcile read the rows
        # and before the engine lists its containers.
        landed.append(engine.add("elsewhere", {}))
        set_row(ctx, task_id, "main", docker_id=landed[0], status=State.CREATED)

    engine.hooks["list_labelled"] = [create_lands]

    report = reconcile(ctx)

    after = get_container(ctx, task_id, "main")
    assert (after.status, after.docker_id) == (State.CREATED, landed[0])
    assert report.retryable == []


def test_an_orphan_that_a_row_claims_meanwhile_is_not_removed(
    fake: Any, host_id: str
) -> None:
    """A container made by a create that began after the rows were read."""
    ctx, engine = fake
    arn = unique_arn()

    def create_meanwhile(*_filters: str) -> None:
        task_id = register(ctx, arn)
        _name_only(ctx, task_id, "main", "ecs-fake-1-main-abc")
        engine.add("ecs-fake-1-main-abc", _labels(arn, "main", host_id))

    engine.hooks["list_labelled"] = [create_meanwhile]

    report = reconcile(ctx, remove_orphans=True)

    assert report.orphans == ["ecs-fake-1-main-abc"]
    assert report.orphans_removed == []
    assert engine.calls["remove"] == 0
    assert len(engine.containers) == 1


def test_another_hosts_container_for_the_same_task_is_not_adopted(
    fake: Any,
) -> None:
    """Same task ARN and container name, another host's label: left alone."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    theirs = engine.add("theirs", _labels(arn, "main", "another-host"), "running")

    report = reconcile(ctx, remove_orphans=True)
    delete_task(ctx, task_id, timeout=0)

    assert report.adopted == [] and report.orphans == []
    assert theirs in engine.containers
    assert engine.calls["remove"] == 0


def test_a_row_waiting_on_a_name_adopts_no_other_hosts_container(
    fake: Any,
) -> None:
    """CREATING under a name another host's container holds: not ours."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    _name_only(ctx, task_id, "main", "ecs-fake-1-main-abc")
    engine.add("ecs-fake-1-main-abc", _labels(arn, "main", "another-host"))

    report = reconcile(ctx)

    assert report.adopted == []
    assert get_container(ctx, task_id, "main").docker_id is None


def test_a_container_without_the_host_label_is_not_adopted(fake: Any) -> None:
    """The ECS labels alone do not make a container berth's."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    engine.add("ecs-agent-made", _ecs_only(arn, "main"))

    report = reconcile(ctx)

    assert report.adopted == []
    assert get_container(ctx, task_id, "main").docker_id is None


def test_a_row_holding_another_hosts_container_lets_it_go(fake: Any) -> None:
    """Adopted before the host label counted: released, never removed."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    theirs = engine.add("theirs", _labels(arn, "main", "another-host"), "running")
    set_row(
        ctx, task_id, "main", docker_id=theirs, docker_name="theirs", status="RUNNING"
    )

    report = reconcile(ctx)
    delete_task(ctx, task_id, timeout=0)

    assert report.retryable == ["theirs"]
    assert theirs in engine.containers
    assert engine.calls["remove"] == 0 and engine.calls["stop"] == 0


def test_an_ecs_container_without_the_host_label_is_no_orphan(fake: Any) -> None:
    """Not reported, and not removed even when orphans are to be removed."""
    ctx, engine = fake
    ecs = engine.add("ecs-agent-made", _ecs_only(unique_arn(), "x"), "running")

    report = reconcile(ctx, remove_orphans=True)

    assert report.orphans == [] and report.orphans_removed == []
    assert ecs in engine.containers


def test_an_exit_with_the_same_code_at_another_time_is_refreshed(
    fake: Any,
) -> None:
    """Exited 3, ran again while nobody listened, exited 3 again: new times."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.set_state(
        view.docker_id, "exited", 3, started=_ago(7300), finished=_ago(7200)
    )
    reconcile(ctx)
    started, finished = _ago(30), _ago(24)
    engine.set_state(view.docker_id, "exited", 3, started=started, finished=finished)

    report = reconcile(ctx)

    assert report.refreshed == [view.docker_name]
    after = get_container(ctx, task_id, "main")
    assert after.exit_code == 3
    assert after.finished_at == datetime.fromisoformat(finished)


def test_a_restart_while_nobody_listened_is_refreshed(fake: Any) -> None:
    """Running, restarted behind berth's back, running: the new start time."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.set_state(view.docker_id, "running", started=_ago(3 * 3600))
    reconcile(ctx)
    started = _ago(90)
    engine.set_state(view.docker_id, "running", started=started)

    report = reconcile(ctx)

    assert report.refreshed == [view.docker_name]
    after = get_container(ctx, task_id, "main")
    assert after.started_at == datetime.fromisoformat(started)


@pytest.mark.parametrize("seconds", [0.2, 5, 75, 2 * 3600, 3 * 86400, 400 * 86400])
def test_times_the_status_text_agrees_with_cost_no_inspect(
    fake: Any, seconds: float
) -> None:
    """Rows whose start and end the listing dates alike: one list, no inspect."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn(), "up", "down")
    up = create_container(ctx, task_id, "up")[0].docker_id
    down = create_container(ctx, task_id, "down")[0].docker_id
    engine.set_state(up, "running", started=_ago(seconds))
    engine.set_state(
        down, "exited", 1, started=_ago(seconds + 9), finished=_ago(seconds)
    )
    reconcile(ctx)
    engine.calls.clear()

    report = reconcile(ctx)

    assert engine.calls == {"list_labelled": 1}
    assert report.refreshed == []


def test_a_failed_container_listed_as_created_is_not_refreshed(
    fake: Any,
) -> None:
    """Start refused, FAILED, "created" on the engine: no inspect, no report."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.set_state(view.docker_id, "created", 128, error="unable to find user")
    assert refresh(ctx, task_id, "main").status == State.FAILED
    engine.calls.clear()

    reports = [reconcile(ctx), reconcile(ctx)]

    assert [r.refreshed for r in reports] == [[], []]
    assert engine.calls == {"list_labelled": 2}
    assert get_container(ctx, task_id, "main").status == State.FAILED


def test_an_inspect_that_confirms_the_row_is_neither_written_nor_reported(
    fake: Any,
) -> None:
    """The listing looks moved (a skewed clock) but the inspect agrees."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.set_state(view.docker_id, "running", started=_ago(3600))
    reconcile(ctx)
    listed = engine.list_labelled

    def skewed(*labels: str) -> list[dict[str, Any]]:
        return [{**c, "Status": "Up 3 seconds"} for c in listed(*labels)]

    engine.list_labelled = skewed  # type: ignore[method-assign]
    before = _updated_at(ctx, task_id)
    engine.calls.clear()

    report = reconcile(ctx)

    assert engine.calls["inspect"] == 1
    assert report.refreshed == []
    assert _updated_at(ctx, task_id) == before


def _updated_at(ctx: Any, task_id: str) -> datetime:
    with ctx.db.transaction() as session:
        row = repo.get_container(session, task_id, "main")
        assert row is not None
        return row.updated_at


def test_a_renamed_container_is_refreshed_with_its_new_name(fake: Any) -> None:
    """``docker rename`` behind berth's back: the row follows the new name."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.rename(view.docker_id, "renamed-by-hand")

    report = reconcile(ctx)

    assert report.refreshed == [view.docker_name]
    assert get_container(ctx, task_id, "main").docker_name == "renamed-by-hand"
    assert find_owner(ctx, "renamed-by-hand").docker_id == view.docker_id


def test_a_rename_to_a_name_another_row_holds_keeps_the_old_name(
    fake: Any,
) -> None:
    """A removed row keeps its name, the renamed row its own, and no error."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn(), "gone", "live")
    gone = create_container(ctx, task_id, "gone")[0]
    live = create_container(ctx, task_id, "live")[0]
    engine.remove(gone.docker_id)
    reconcile(ctx)
    engine.rename(live.docker_id, gone.docker_name or "")

    reports = [reconcile(ctx), reconcile(ctx)]

    assert reports[1].refreshed == []
    assert get_container(ctx, task_id, "live").docker_name == live.docker_name
    assert get_container(ctx, task_id, "gone").status == State.REMOVED


def test_two_containers_that_swapped_names_are_followed(fake: Any) -> None:
    """Renamed into each other's names while nobody listened: one reconcile
    stores both new names, though each was the other row's."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn(), "a", "b")
    a = create_container(ctx, task_id, "a")[0]
    b = create_container(ctx, task_id, "b")[0]
    engine.rename(a.docker_id, "swapping")
    engine.rename(b.docker_id, a.docker_name or "")
    engine.rename(a.docker_id, b.docker_name or "")

    report = reconcile(ctx)

    assert get_container(ctx, task_id, "a").docker_name == b.docker_name
    assert get_container(ctx, task_id, "b").docker_name == a.docker_name
    assert find_owner(ctx, a.docker_name or "").container_name == "b"
    assert sorted(report.refreshed) == sorted([a.docker_name, b.docker_name])
    assert reconcile(ctx).refreshed == []


def test_a_row_without_an_id_keeps_its_stored_name(fake: Any, host_id: str) -> None:
    """CREATING with no ID: recovery never renames it to what it lists."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    _name_only(ctx, task_id, "main", "ecs-fake-1-main-abc")
    engine.add("unrelated", _labels(unique_arn(), "main", host_id))

    reconcile(ctx)

    assert get_container(ctx, task_id, "main").docker_name == "ecs-fake-1-main-abc"
