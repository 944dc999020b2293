"""What an inspect implies for a row: the state, and the engine's name for a
container the row already holds."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.service.context import Context
from app.service.create import create_container
from app.service.lifecycle import refresh
from app.service.observe import observed
from app.service.reconcile import reconcile
from app.service.tasks import find_owner, get_container
from app.service.views import State
from app.store.models import ContainerRow
from tests.conftest import unique_arn
from tests.support.fake_engine import FakeEngine, fake_context, register


@pytest.fixture
def fake(settings: Settings) -> tuple[Any, FakeEngine]:
    return fake_context(settings)


def _doc(docker_id: str, name: str) -> dict[str, Any]:
    return {
        "Id": docker_id,
        "Name": "/" + name,
        "State": {"Status": "created", "StartedAt": "0001-01-01T00:00:00Z"},
    }


def test_a_row_with_the_containers_id_takes_the_engines_name() -> None:
    """Renamed on the engine: the name without its leading slash is stored."""
    row = ContainerRow(docker_id="abc", docker_name="old", status=State.CREATED)

    assert observed(row, _doc("abc", "new"))["docker_name"] == "new"


def test_a_row_without_an_id_keeps_its_stored_name() -> None:
    """The create protocol retries under the stored name: never changed."""
    row = ContainerRow(docker_id=None, docker_name="stored", status=State.CREATING)

    assert "docker_name" not in observed(row, _doc("abc", "other"))


def test_a_document_of_another_container_names_nothing() -> None:
    """An inspect whose ID is not the row's says nothing of the row's name."""
    row = ContainerRow(docker_id="abc", docker_name="old", status=State.CREATED)

    assert "docker_name" not in observed(row, _doc("def", "new"))


def test_a_refresh_stores_the_name_a_rename_gave(fake: Any) -> None:
    """GET …?refresh=true after ``docker rename``: found by its new name."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn())
    view, _ = create_container(ctx, task_id, "main")
    engine.rename(view.docker_id, "renamed-by-hand")

    after = refresh(ctx, task_id, "main")

    assert after.docker_name == "renamed-by-hand"
    assert find_owner(ctx, "renamed-by-hand").docker_id == view.docker_id


def test_a_refresh_keeps_the_old_name_when_another_row_holds_the_new(
    fake: Any,
) -> None:
    """Renamed to a removed row's name: no error, both rows keep theirs."""
    ctx, engine = fake
    task_id = register(ctx, unique_arn(), "gone", "live")
    gone = create_container(ctx, task_id, "gone")[0]
    live = create_container(ctx, task_id, "live")[0]
    engine.remove(gone.docker_id)
    reconcile(ctx)
    engine.rename(live.docker_id, gone.docker_name or "")

    after = refresh(ctx, task_id, "live")

    assert after.docker_name == live.docker_name
    assert get_container(ctx, task_id, "gone").docker_name == gone.docker_name


def test_a_name_another_hosts_row_holds_is_not_taken(fake: Any) -> None:
    """Berths sharing a database share its unique names: renamed to a name
    another host's row holds, a refresh keeps the old one, without error."""
    ctx, engine = fake
    other = Context(
        settings=ctx.settings.model_copy(update={"host_id": "another-host"}),
        db=ctx.db,
        engine=engine,
    )
    theirs = create_container(other, register(other, unique_arn()), "main")[0]
    task_id = register(ctx, unique_arn())
    mine = create_container(ctx, task_id, "main")[0]
    engine.rename(mine.docker_id, theirs.docker_name or "")

    after = refresh(ctx, task_id, "main")

    assert after.docker_name == mine.docker_name
