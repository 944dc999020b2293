"""Turning what the engine says about a container into the row's state."""

from __future__ import annotations

from typing import Any

from app.engine.metadata import ContainerMetadata, convert_inspect, merge_previous
from app.service.views import State, load_metadata
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


def observed(row: ContainerRow, doc: dict[str, Any]) -> dict[str, Any]:
    """The column values that an inspect document implies for ``row``."""
    meta = merge_previous(convert_inspect(doc), load_metadata(row.meta))
    return {
        "docker_id": meta.docker_id or row.docker_id,
        "status": state_of(meta),
        "meta": meta.model_dump(mode="json"),
        "error_name": None,
        "error_message": None,
    }


def record_inspect(row: ContainerRow, doc: dict[str, Any]) -> None:
    """Set what ``doc`` says on a row attached to an open session."""
    for key, value in observed(row, doc).items():
        setattr(row, key, value)
    row.updated_at = utcnow()


def record_gone(row: ContainerRow) -> None:
    row.status = State.REMOVED
    row.updated_at = utcnow()
