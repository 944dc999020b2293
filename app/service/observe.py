"""Turning what the engine says about a container into the row's state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, object_session

from app.engine.metadata import ContainerMetadata, convert_inspect, merge_previous
from app.service.views import State, load_metadata
from app.store import repo
from app.store.models import ContainerRow, utcnow

_STOPPED_WORDS = {"exited", "dead", "removing"}


def state_of(meta: ContainerMetadata) -> State:
    """The berth state an inspected container is in."""
    if meta.running:
        return State.RUNNING
    if meta.docker_status in _STOPPED_WORDS or meta.finished_at is not None:
        return State.STOPPED
    if meta.error is not None and meta.error.name == "DockerStateError":
        # Created, asked to start, and refused: the container the ECS agent
        # leaves stuck in `created` with nobody told.
        return State.FAILED
    return State.CREATED


def current_name(row: ContainerRow, meta: ContainerMetadata) -> str | None:
    """The engine's name for the row's own container, which the row may take.

    Only for a row with a Docker ID, and for the container of that ID:
    ``docker rename`` changes the name and berth should follow. A row
    with no ID keeps its stored name whatever the engine says, because
    the create protocol retries under it and recovery looks it up.
    """
    if row.docker_id is None or meta.docker_id != row.docker_id:
        return None
    return meta.docker_name


def observed(row: ContainerRow, doc: dict[str, Any]) -> dict[str, Any]:
    """The column values that an inspect document implies for ``row``."""
    meta = merge_previous(convert_inspect(doc), load_metadata(row.meta))
    values: dict[str, Any] = {
        "docker_id": meta.docker_id or row.docker_id,
        "status": state_of(meta),
        "meta": meta.model_dump(mode="json"),
        "error_name": None,
        "error_message": None,
    }
    name = current_name(row, meta)
    if name is not None:
        values["docker_name"] = name
    return values


def _state_time(meta: ContainerMetadata | None) -> datetime | None:
    """When the container last started or stopped, as far as ``meta`` knows."""
    if meta is None:
        return None
    times = [t for t in (meta.started_at, meta.finished_at) if t is not None]
    return max(times, default=None)


def is_stale(row: ContainerRow, doc: dict[str, Any]) -> bool:
    """Whether ``doc`` describes an older moment than the row already holds.

    The event watcher and the API both inspect and write; an inspect made
    before a ``die`` but written after it would bring a dead container back
    to life, with no later event to correct it.
    """
    new = convert_inspect(doc)
    if new.docker_id != row.docker_id:
        return False
    if row.status == State.REMOVED:
        # Removal is only recorded on the engine's word that the container
        # is gone, and a destroyed container never comes back.
        return True

    old = load_metadata(row.meta)
    if old is None:
        return False
    new_time, old_time = _state_time(new), _state_time(old)
    return new_time is not None and old_time is not None and new_time < old_time


def record_inspect(row: ContainerRow, doc: dict[str, Any]) -> bool:
    """Set what ``doc`` says on a row attached to an open session.

    False when the row already holds something newer, which is kept.
    """
    if is_stale(row, doc):
        return False
    values = observed(row, doc)
    name = values.get("docker_name")
    session = object_session(row)
    if (
        name is not None
        and name != row.docker_name
        and session is not None
        and name_taken(session, row.id, name)
    ):
        del values["docker_name"]
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    return True


def name_taken(session: Session, row_id: int, name: str) -> bool:
    """Whether a row other than ``row_id`` holds the Docker name ``name``.

    ``docker rename`` may pick a name a removed row still holds, on this
    host or, where berths share a database, on another (names are unique
    across the database). That row keeps it, and the renamed one its old
    name, rather than fail the whole write on the unique name.
    """
    holder = repo.docker_name_holder(session, name)
    return holder is not None and holder != row_id


def record_gone(row: ContainerRow) -> None:
    row.status = State.REMOVED
    row.updated_at = utcnow()
