"""The create protocol's hard branches on a fake of berth's Engine interface:
the ones a real engine cannot be made to take on demand."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.errors import (
    CannotInspectContainerError,
    ContainerNotFoundError,
    DockerTimeoutError,
    NameConflictError,
)
from app.service import create as create_module
from app.service.create import create_container
from app.service.lifecycle import delete_task, remove_container
from app.service.tasks import get_container
from app.service.views import State
from app.store import repo
from tests.conftest import unique_arn
from tests.support.fake_engine import FakeEngine, fake_context, register, set_row

LABEL = "com.amazonaws.ecs."


@pytest.fixture
def fake(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeEngine]:
    # The real wait for an in-flight create to land is seconds; the fake
    # has none in flight unless a test puts one there.
    monkeypatch.setattr(create_module, "NAME_SETTLE_S", 0.3)
    monkeypatch.setattr(create_module, "NAME_SETTLE_FIRST_POLL_S", 0.05)
    return fake_context(settings)


def _labels(arn: str, name: str, host: str) -> dict[str, str]:
    return {
        LABEL + "task-arn": arn,
        LABEL + "container-name": name,
        "io.berth.host-id": host,
    }


def _stored(ctx: Any, task_id: str, name: str = "main") -> tuple[str, str, str]:
    with ctx.db.transaction() as session:
        row = repo.get_container(session, task_id, name)
        assert row is not None
        return row.status, row.docker_name or "", row.docker_id or ""


def test_a_name_held_by_nothing_gets_a_fresh_stored_name_and_one_retry(
    fake: Any,
) -> None:
    """409, inspect finds nothing, no labelled container: new name, once."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    names: list[str] = []
    engine.hooks["create"] = [lambda name, _body: names.append(name)]
    engine.hooks["create"].append(
        lambda name, _body: engine.reserved.add(name) if len(names) == 1 else None
    )

    view, created = create_container(ctx, task_id, "main")

    assert created and len(names) == 2 and names[0] != names[1]
    assert view.docker_name == names[1]
    assert _stored(ctx, task_id) == ("CREATED", names[1], view.docker_id)


def test_the_fresh_name_is_stored_before_the_retry(fake: Any) -> None:
    """The retry's name is durable before Docker is asked to use it."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    seen: list[tuple[str, tuple[str, str, str]]] = []

    def reserve_first(name: str, _body: Any) -> None:
        seen.append((name, _stored(ctx, task_id)))
        if len(seen) == 1:
            engine.reserved.add(name)

    engine.hooks["create"] = [reserve_first]

    create_container(ctx, task_id, "main")

    (first, at_first), (second, at_second) = seen
    assert at_first == ("CREATING", first, "")
    assert at_second == ("CREATING", second, "")


def test_a_name_held_by_nothing_twice_is_a_conflict_and_no_third_try(
    fake: Any,
) -> None:
    """Both names reserved: NameConflictError after exactly two creates."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    engine.hooks["create"] = [lambda name, _body: engine.reserved.add(name)]

    with pytest.raises(NameConflictError):
        create_container(ctx, task_id, "main")

    assert engine.calls["create"] == 2
    assert engine.containers == {}
    status, name, _ = _stored(ctx, task_id)
    assert status == "NONE" and name


def test_a_create_in_flight_under_the_name_is_waited_for_and_adopted(
    fake: Any, host_id: str
) -> None:
    """409 and an empty inspect, then the other create lands: adopt it."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    landed: list[str] = []

    def in_flight(name: str, _body: Any) -> None:
        engine.reserved.add(name)

    def lands_later(ref: str) -> None:
        if engine.calls["inspect"] == 2 and not landed:
            landed.append(engine.add(ref, _labels(arn, "main", host_id)))

    engine.hooks["create"] = [in_flight]
    engine.hooks["inspect"] = [lands_later]

    view, _ = create_container(ctx, task_id, "main")

    assert view.docker_id == landed[0]
    assert engine.calls["create"] == 1
    assert len(engine.containers) == 1


def test_ours_under_another_name_is_adopted_instead_of_a_second_one(
    fake: Any, host_id: str
) -> None:
    """409 with nothing by name, but our labels elsewhere: no new container."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    elder = engine.add("ecs-fake-1-main-elder", _labels(arn, "main", host_id))
    engine.hooks["create"] = [lambda name, _body: engine.reserved.add(name)]

    view, _ = create_container(ctx, task_id, "main")

    assert (view.docker_id, view.docker_name) == (elder, "ecs-fake-1-main-elder")
    assert engine.calls["create"] == 1
    assert len(engine.containers) == 1


def test_a_timed_out_create_that_happened_is_adopted(fake: Any) -> None:
    """The answer is lost but the container exists: adopt, one container."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    original = engine.create

    def create_then_time_out(name: str, body: Any, api: str | None = None) -> str:
        original(name, body, api)
        raise DockerTimeoutError("no answer")

    engine.create = create_then_time_out

    view, created = create_container(ctx, task_id, "main")

    assert created and view.status == State.CREATED
    assert list(engine.containers) == [view.docker_id]


def test_a_timed_out_create_that_did_not_happen_stays_retryable(
    fake: Any,
) -> None:
    """Nothing made and nothing inspectable: CREATING, name and error kept."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    engine.fail["create"] = [DockerTimeoutError("no answer")]
    engine.fail["inspect"] = [DockerTimeoutError("still no answer")]

    with pytest.raises(DockerTimeoutError):
        create_container(ctx, task_id, "main")
    status, name, docker_id = _stored(ctx, task_id)
    view, _ = create_container(ctx, task_id, "main")

    assert (status, docker_id) == ("CREATING", "")
    assert get_container(ctx, task_id, "main").docker_name == name
    assert view.docker_name == name
    assert engine.calls["create"] == 2


def test_an_id_docker_returned_is_stored_when_the_inspect_fails(
    fake: Any,
) -> None:
    """Create answered, inspect failed: the ID is stored all the same."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    engine.fail["inspect"] = [CannotInspectContainerError("boom")]

    view, _ = create_container(ctx, task_id, "main")

    assert view.docker_id in engine.containers
    assert _stored(ctx, task_id)[::2] == ("CREATED", view.docker_id)


def test_a_container_made_for_a_deleted_task_is_removed(fake: Any) -> None:
    """The task goes while Docker creates: the new container goes too."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())

    def task_deleted(*_: Any) -> None:
        with ctx.db.transaction() as session:
            repo.delete_task(session, task_id)

    engine.hooks["create"] = [task_deleted]

    with pytest.raises(ContainerNotFoundError):
        create_container(ctx, task_id, "main")

    assert engine.containers == {}


def test_no_docker_call_has_an_empty_reference(fake: Any) -> None:
    """Rows never named or created are deleted without asking Docker."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn(), "a", "b")
    create_container(ctx, task_id, "a")

    remove_container(ctx, task_id, "b")
    delete_task(ctx, task_id, timeout=0)

    assert engine.refs and all(ref.strip() for ref in engine.refs)
    assert engine.containers == {}


def test_another_hosts_container_under_the_stored_name_is_a_conflict(
    fake: Any,
) -> None:
    """409, another host's container of this task under our name: a conflict."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    set_row(ctx, task_id, "main", docker_name="ecs-shared-name")
    theirs = engine.add("ecs-shared-name", _labels(arn, "main", "another-host"))

    with pytest.raises(NameConflictError):
        create_container(ctx, task_id, "main")

    assert _stored(ctx, task_id)[2] == ""
    assert list(engine.containers) == [theirs]


def test_another_hosts_container_for_the_task_is_not_adopted_by_labels(
    fake: Any,
) -> None:
    """409, nothing by name, another host's labelled container: not adopted."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)
    theirs = engine.add("ecs-fake-1-main-theirs", _labels(arn, "main", "other"))
    engine.hooks["create"] = [
        lambda name, _body: (
            engine.reserved.add(name) if engine.calls["create"] == 1 else None
        )
    ]

    view, created = create_container(ctx, task_id, "main")

    assert created and view.docker_id not in (None, theirs)
    assert engine.calls["create"] == 2
    assert theirs in engine.containers


def test_a_lost_answer_is_not_taken_for_another_hosts_container(
    fake: Any,
) -> None:
    """Timed out; the name now holds another host's container: not adopted."""
    ctx, engine = fake
    arn = unique_arn()
    task_id = register(ctx, arn)

    def someone_else_made_it(name: str, _body: Any) -> None:
        engine.add(name, _labels(arn, "main", "another-host"))

    engine.hooks["create"] = [someone_else_made_it]
    engine.fail["create"] = [DockerTimeoutError("no answer")]

    with pytest.raises(DockerTimeoutError):
        create_container(ctx, task_id, "main")

    status, _, docker_id = _stored(ctx, task_id)
    assert (status, docker_id) == ("CREATING", "")
