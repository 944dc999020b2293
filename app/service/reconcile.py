"""Recovery: make the rows agree with the engine, and report the rest.

One list call, filtered by berth's label, tells which containers exist and
in what state; only the few whose state moved are inspected. Run at start-
up, after the event stream reconnects, and on ``POST /v1/reconcile``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from app.errors import BerthError
from app.service.context import Context
from app.service.labels import HOST_ID, TASK_ARN, owned_by
from app.service.observe import observed
from app.service.views import ReconcileReport, State
from app.store import repo
from app.store.models import ContainerRow, utcnow

log = structlog.get_logger(__name__)

_LISTED_STATES = {
    "created": State.CREATED,
    "running": State.RUNNING,
    "paused": State.RUNNING,
    "restarting": State.RUNNING,
    "exited": State.STOPPED,
    "dead": State.STOPPED,
    "removing": State.STOPPED,
}


@dataclass
class _Snapshot:
    """A row as read, with its task's ARN; rows are written back later."""

    id: int
    task_arn: str
    name: str
    docker_id: str | None
    docker_name: str | None
    status: str
    meta: dict[str, Any] | None


@dataclass
class _Changes:
    values: dict[int, dict[str, Any]] = field(default_factory=dict)

    def set(self, row_id: int, **values: Any) -> None:
        self.values.setdefault(row_id, {}).update(values)


def _snapshots(ctx: Context) -> list[_Snapshot]:
    with ctx.db.transaction() as session:
        rows = repo.containers_of_host(session, ctx.settings.host_id)
        return [
            _Snapshot(
                id=r.id,
                task_arn=r.task.arn,
                name=r.name,
                docker_id=r.docker_id,
                docker_name=r.docker_name,
                status=r.status,
                meta=r.meta,
            )
            for r in rows
        ]


def _label(ctx: Context) -> str:
    return ctx.settings.label_prefix + TASK_ARN


def _mine(ctx: Context, listed: Mapping[str, Any]) -> bool:
    """Made by this host's berth, or by no berth (an ECS-style container)."""
    host = (listed.get("Labels") or {}).get(HOST_ID)
    return host is None or host == ctx.settings.host_id


def _ref(snap: _Snapshot) -> str:
    return snap.docker_name or snap.docker_id or f"{snap.task_arn}/{snap.name}"


def _observe(ctx: Context, snap: _Snapshot, docker_id: str, changes: _Changes) -> bool:
    """Inspect and stage what it says; False when the engine would not say."""
    try:
        doc = ctx.engine.inspect(docker_id)
    except BerthError as exc:
        log.warning(
            "reconcile.inspect_failed",
            task_arn=snap.task_arn,
            container=snap.name,
            docker_id=docker_id,
            error_name=exc.error_name,
        )
        return False
    if doc is None:
        changes.set(snap.id, status=State.REMOVED)
        return True

    shell = ContainerRow(docker_id=snap.docker_id, meta=snap.meta)
    changes.set(snap.id, **observed(shell, doc))
    return True


def _needs_inspect(snap: _Snapshot, listed: Mapping[str, Any]) -> bool:
    state = _LISTED_STATES.get(str(listed.get("State", "")).lower())
    return state is None or state != snap.status or not snap.meta


def _with_id(
    ctx: Context,
    snap: _Snapshot,
    listed: Mapping[str, Any] | None,
    changes: _Changes,
    report: ReconcileReport,
) -> None:
    assert snap.docker_id is not None
    if listed is None:
        if snap.status != State.REMOVED:
            changes.set(snap.id, status=State.REMOVED)
            report.removed.append(_ref(snap))
        return
    if not _needs_inspect(snap, listed):
        return
    if _observe(ctx, snap, snap.docker_id, changes):
        report.refreshed.append(_ref(snap))
    else:
        report.unknown.append(_ref(snap))


def _without_id(
    ctx: Context,
    snap: _Snapshot,
    listed: Mapping[str, Any] | None,
    changes: _Changes,
    report: ReconcileReport,
) -> None:
    """A named row whose create never came back: did Docker make it?"""
    if listed is not None and owned_by(
        listed.get("Labels"), ctx.settings.label_prefix, snap.task_arn, snap.name
    ):
        docker_id = str(listed["Id"])
        changes.set(snap.id, docker_id=docker_id, status=State.CREATED)
        if _observe(ctx, snap, docker_id, changes):
            changes.values[snap.id].setdefault("docker_id", docker_id)
        report.adopted.append(_ref(snap))
        return

    if snap.status == State.CREATING:
        # Docker never made it: the row may be created again, under the
        # same name, by the next create.
        changes.set(snap.id, status=State.NONE)
        report.retryable.append(_ref(snap))


def _apply(ctx: Context, changes: _Changes) -> None:
    if not changes.values:
        return
    now = utcnow()
    with ctx.db.transaction() as session:
        for row_id, values in changes.values.items():
            repo.update_container(session, row_id, updated_at=now, **values)


def _orphans(
    ctx: Context, listed: list[dict[str, Any]], seen: set[str]
) -> list[dict[str, Any]]:
    return [c for c in listed if c.get("Id") not in seen and _mine(ctx, c)]


def _listed_name(listed: Mapping[str, Any]) -> str:
    names = listed.get("Names") or []
    return str(names[0]).lstrip("/") if names else str(listed.get("Id", ""))


def reconcile(ctx: Context, *, remove_orphans: bool = False) -> ReconcileReport:
    """Bring every row of this host in line with the engine."""
    started = time.monotonic()
    listed = ctx.engine.list_labelled(_label(ctx))
    by_id = {str(c.get("Id")): c for c in listed}
    by_name = {str(n).lstrip("/"): c for c in listed for n in (c.get("Names") or [])}

    report = ReconcileReport()
    changes = _Changes()
    seen: set[str] = set()
    for snap in _snapshots(ctx):
        if snap.docker_id:
            seen.add(snap.docker_id)
            _with_id(ctx, snap, by_id.get(snap.docker_id), changes, report)
        elif snap.docker_name:
            found = by_name.get(snap.docker_name)
            if found is not None:
                seen.add(str(found.get("Id")))
            _without_id(ctx, snap, found, changes, report)
    _apply(ctx, changes)

    for orphan in _orphans(ctx, listed, seen):
        name = _listed_name(orphan)
        report.orphans.append(name)
        if remove_orphans and ctx.engine.remove(str(orphan["Id"])):
            report.orphans_removed.append(name)

    ctx.metrics.reconciled(report)
    log.info(
        "reconcile.done",
        adopted=len(report.adopted),
        refreshed=len(report.refreshed),
        removed=len(report.removed),
        orphans=len(report.orphans),
        retryable=len(report.retryable),
        unknown=len(report.unknown),
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return report
