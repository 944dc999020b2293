"""Recovery: make the rows agree with the engine, and report the rest.

One list call, filtered by berth's label, tells which containers exist and
in what state; only the few whose state moved are inspected. Run at start-
up, after the event stream reconnects, and on ``POST /v1/reconcile``.

Creates keep running while a reconcile does, so every write here is a
compare-and-set against the row as it was read: a row that a create (or
an event) changed in the meantime is left to that newer writer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session

from app.engine.metadata import ContainerMetadata
from app.errors import BerthError
from app.service import listed as status_text
from app.service.context import Context
from app.service.labels import CONTAINER_NAME, TASK_ARN, made_here, owned_by
from app.service.listed import Ago, Moment
from app.service.observe import name_taken, observed
from app.service.views import ReconcileReport, State, load_metadata
from app.store import repo
from app.store.models import ContainerRow

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

# How far a stored start or finish time may lie outside the span a list
# entry's Status text gives before the container counts as moved: the two
# clocks' offset, and Docker's nanoseconds against our microseconds.
STATUS_SLACK_S = 2.0


@dataclass(frozen=True)
class _Snapshot:
    """A row as read, with its task's ARN; written back only if unchanged."""

    id: int
    task_arn: str
    name: str
    docker_id: str | None
    docker_name: str | None
    status: str
    meta: dict[str, Any] | None
    error_name: str | None
    error_message: str | None

    @property
    def ref(self) -> str:
        return self.docker_name or self.docker_id or f"{self.task_arn}/{self.name}"

    @property
    def expected(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "docker_id": self.docker_id,
            "docker_name": self.docker_name,
        }

    def differs(self, values: Mapping[str, Any]) -> bool:
        """Whether writing ``values`` would change what the row holds."""
        held = {
            **self.expected,
            "error_name": self.error_name,
            "error_message": self.error_message,
        }
        for key, value in values.items():
            if key == "meta":
                if load_metadata(value) != load_metadata(self.meta):
                    return True
            elif held.get(key) != value:
                return True
        return False


@dataclass
class _Change:
    snap: _Snapshot
    bucket: str
    values: dict[str, Any]


@dataclass
class _Listing:
    """The one list call's answer, and which entries rows have claimed.

    ``asked_at`` and ``answered_at`` bracket the moment the engine wrote
    the entries' Status texts, which count back from then.
    """

    entries: list[dict[str, Any]]
    asked_at: datetime
    answered_at: datetime
    claimed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.by_id = {str(c.get("Id")): c for c in self.entries}
        self.by_name = {_listed_name(c): c for c in self.entries}

    def claim(self, entry: Mapping[str, Any] | None) -> None:
        if entry is not None:
            self.claimed.add(str(entry.get("Id")))

    def unclaimed(self) -> list[dict[str, Any]]:
        return [c for c in self.entries if str(c.get("Id")) not in self.claimed]


def _listed_name(listed: Mapping[str, Any]) -> str:
    names = listed.get("Names") or []
    return str(names[0]).lstrip("/") if names else str(listed.get("Id", ""))


def _snapshots(ctx: Context) -> list[_Snapshot]:
    with ctx.db.transaction() as session:
        rows = repo.containers_with_arns(session, ctx.settings.host_id)
        return [
            _Snapshot(
                id=r.id,
                task_arn=arn,
                name=r.name,
                docker_id=r.docker_id,
                docker_name=r.docker_name,
                status=r.status,
                meta=r.meta,
                error_name=r.error_name,
                error_message=r.error_message,
            )
            for r, arn in rows
        ]


def _label(ctx: Context) -> str:
    return ctx.settings.label_prefix + TASK_ARN


def _mine(ctx: Context, listed: Mapping[str, Any]) -> bool:
    """Made by this host's berth.

    Not a container with no host label: the ECS labels alone may be an
    ECS agent's or another tool's, and those are not berth's to remove.
    """
    return made_here(listed.get("Labels"), ctx.settings.host_id)


def _status(listed: Mapping[str, Any]) -> str:
    return str(listed.get("Status") or "")


def _listed_state(listed: Mapping[str, Any]) -> State:
    return _LISTED_STATES.get(str(listed.get("State", "")).lower(), State.CREATED)


def _same_state(listed: State, held: str) -> bool:
    # A container whose start the engine refused stays "created" on the
    # engine, and berth holds it as FAILED: the two agree.
    return listed == held or (listed == State.CREATED and held == State.FAILED)


def _within(stored: datetime | None, ago: Ago, listing: _Listing) -> bool:
    """Whether ``stored`` lies in the span the Status text allows."""
    if stored is None:
        return False
    slack = STATUS_SLACK_S
    earliest = listing.asked_at - timedelta(seconds=ago.high + slack)
    latest = listing.answered_at - timedelta(seconds=ago.low - slack)
    return earliest <= stored <= latest


def _time_moved(
    meta: ContainerMetadata, listed: Mapping[str, Any], listing: _Listing
) -> bool:
    """Whether the Status text dates a start or an end the row never saw."""
    dated = status_text.status_moment(_status(listed))
    if dated is None:
        return False
    moment, ago = dated
    stored = meta.started_at if moment == Moment.STARTED else meta.finished_at
    return not _within(stored, ago, listing)


def _needs_inspect(
    snap: _Snapshot, listed: Mapping[str, Any], listing: _Listing
) -> bool:
    """Whether the list entry says anything the row does not already hold.

    The state word alone is not enough: a container that ran again and
    exited again while nobody listened is "exited" both times, with
    another exit code, or with the same one but at another time; one that
    was restarted is "running" both times, since another moment. Those
    are the stale states recovery must not keep. So is a name that
    ``docker rename`` changed.
    """
    state = _LISTED_STATES.get(str(listed.get("State", "")).lower())
    meta = load_metadata(snap.meta)
    if state is None or meta is None or not _same_state(state, snap.status):
        return True
    if _listed_name(listed) != snap.docker_name:
        return True
    if state == State.STOPPED:
        code = status_text.exit_code(_status(listed))
        if code is not None and code != meta.exit_code:
            return True
    if state == State.RUNNING and status_text.health(_status(listed)) != meta.health:
        return True
    return _time_moved(meta, listed, listing)


def _inspected(ctx: Context, snap: _Snapshot, docker_id: str) -> dict[str, Any] | None:
    """What an inspect implies for the row; None when the engine would not say.

    A failed inspect is "unknown": the row keeps what it had.
    """
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
        return None
    if doc is None:
        return {"status": State.REMOVED}

    shell = ContainerRow(docker_id=snap.docker_id, meta=snap.meta)
    return observed(shell, doc)


def _with_id(
    ctx: Context,
    snap: _Snapshot,
    listing: _Listing,
    changes: list[_Change],
    report: ReconcileReport,
) -> None:
    assert snap.docker_id is not None
    listed = listing.by_id.get(snap.docker_id)
    if listed is not None and not _mine(ctx, listed):
        _release(snap, changes)
        return
    listing.claim(listed)
    if listed is None:
        if snap.status != State.REMOVED:
            changes.append(_Change(snap, "removed", {"status": State.REMOVED}))
        return
    if not _needs_inspect(snap, listed, listing):
        return

    values = _inspected(ctx, snap, snap.docker_id)
    if values is None:
        report.unknown.append(snap.ref)
    elif snap.differs(values):
        # Only what changes is written and reported: a row the engine
        # merely confirmed was not refreshed.
        bucket = "removed" if values["status"] == State.REMOVED else "refreshed"
        changes.append(_Change(snap, bucket, values))


def _release(snap: _Snapshot, changes: list[_Change]) -> None:
    """Let go of a container another host's berth (or no berth) made.

    Only a row that adopted it before adoption checked the host label can
    hold one. Keeping it would let this berth stop and remove the other
    host's container; the row goes back to NONE with no name, so the
    next create makes one of its own.
    """
    changes.append(
        _Change(
            snap,
            "retryable",
            {
                "status": State.NONE,
                "docker_id": None,
                "docker_name": None,
                "meta": None,
                "error_name": None,
                "error_message": None,
            },
        )
    )


def _find_own(
    ctx: Context, snap: _Snapshot, listing: _Listing
) -> dict[str, Any] | None:
    """The unclaimed container this row's create made, if there is one.

    By the stored name first; then by labels alone, because the name may
    have changed after the engine held it reserved (the oldest wins, the
    rest are duplicates and stay orphans).
    """
    prefix = ctx.settings.label_prefix
    host = ctx.settings.host_id
    candidates = [
        c
        for c in listing.unclaimed()
        if owned_by(c.get("Labels"), prefix, snap.task_arn, snap.name, host)
    ]
    by_name = [c for c in candidates if _listed_name(c) == snap.docker_name]
    ordered = by_name or sorted(candidates, key=lambda c: int(c.get("Created") or 0))
    return ordered[0] if ordered else None


def _without_id(
    ctx: Context,
    snap: _Snapshot,
    listing: _Listing,
    changes: list[_Change],
    report: ReconcileReport,
) -> None:
    """A row whose create never came back: did Docker make it?"""
    if snap.status == State.REMOVED:
        # Removed by name before an ID was ever stored: nothing to adopt,
        # and whatever still carries its labels is an orphan.
        return

    found = _find_own(ctx, snap, listing)
    listing.claim(found)
    if found is not None:
        docker_id = str(found["Id"])
        values = _inspected(ctx, snap, docker_id) or {"status": _listed_state(found)}
        if values["status"] == State.REMOVED:
            return
        values.update(
            docker_id=docker_id,
            docker_name=_listed_name(found),
            error_name=None,
            error_message=None,
        )
        changes.append(_Change(snap, "adopted", values))
        return

    if snap.status == State.CREATING:
        # Docker never made it: the next create may try again, under the
        # same stored name.
        changes.append(_Change(snap, "retryable", {"status": State.NONE}))


def _apply(ctx: Context, changes: list[_Change], report: ReconcileReport) -> None:
    """Write each change if its row is still as read; report what was written."""
    if not changes:
        return
    # What the engine said, which the next reconcile would say again.
    with ctx.db.transaction(durable=False) as session:
        released = _release_names(session, changes)
        applied = [
            change
            for change in changes
            if _write(session, change, released.get(change.snap.id))
        ]
    for change in applied:
        getattr(report, change.bucket).append(change.snap.ref)


def _renames(change: _Change) -> bool:
    name = change.values.get("docker_name")
    return bool(name) and name != change.snap.docker_name


def _release_names(session: Session, changes: list[_Change]) -> dict[int, str]:
    """Clear the names renamed rows leave behind, before any takes a new one.

    Names are unique, so two containers that swapped names while nobody
    listened could otherwise never follow: each new name is the other
    row's old one. Returns the old name of each row cleared.
    """
    released = {}
    for change in changes:
        snap = change.snap
        if (
            _renames(change)
            and snap.docker_name is not None
            and repo.update_container_if(
                session, snap.id, snap.expected, docker_name=None
            )
        ):
            released[snap.id] = snap.docker_name
    return released


def _name_taken(session: Session, change: _Change) -> bool:
    if not _renames(change):
        return False
    return name_taken(session, change.snap.id, change.values["docker_name"])


def _write(session: Session, change: _Change, released: str | None) -> bool:
    """Write one change if its row is as read; whether it changed the row."""
    expected = change.snap.expected
    if released is not None:
        expected = {**expected, "docker_name": None}
    changes_row = True
    if _name_taken(session, change):
        log.warning(
            "reconcile.name_taken",
            task_arn=change.snap.task_arn,
            container=change.snap.name,
            docker_name=change.values.pop("docker_name"),
        )
        if released is not None and not name_taken(session, change.snap.id, released):
            # The new name is held outside this batch: put the old one back.
            change.values["docker_name"] = released
        changes_row = change.snap.differs(change.values)
        if not changes_row and released is None:
            return False
    written = repo.update_container_if(
        session, change.snap.id, expected, **change.values
    )
    return written and changes_row


def _still_orphan(ctx: Context, orphan: Mapping[str, Any]) -> bool:
    """Checked again just before removal: has a row taken it meanwhile?

    A create that began after the snapshot may have made this container;
    only a container no row can still claim is removed.
    """
    labels = orphan.get("Labels") or {}
    prefix = ctx.settings.label_prefix
    host = ctx.settings.host_id
    with ctx.db.transaction() as session:
        if repo.find_container_by_docker_name(session, host, _listed_name(orphan)):
            return False
        row = repo.find_container_of_task(
            session,
            host,
            str(labels.get(prefix + TASK_ARN, "")),
            str(labels.get(prefix + CONTAINER_NAME, "")),
        )
        if row is None or row.status == State.REMOVED:
            return True
        # A row with no ID may be a create in flight, about to store this
        # very container; a row with another ID makes this one a duplicate.
        return row.docker_id is not None and row.docker_id != orphan.get("Id")


def _remove_orphan(ctx: Context, orphan: Mapping[str, Any]) -> bool:
    docker_id = str(orphan.get("Id") or "")
    if not docker_id or not _still_orphan(ctx, orphan):
        return False
    try:
        ctx.engine.remove(docker_id)
    except BerthError as exc:
        log.warning(
            "reconcile.orphan_not_removed",
            docker_id=docker_id,
            error_name=exc.error_name,
            error=exc.detail,
        )
        return False
    log.info("container.orphan_removed", docker_id=docker_id)
    return True


def _orphans(
    ctx: Context, listing: _Listing, remove: bool, report: ReconcileReport
) -> None:
    for orphan in listing.unclaimed():
        if not _mine(ctx, orphan):
            continue
        name = _listed_name(orphan)
        report.orphans.append(name)
        if remove and _remove_orphan(ctx, orphan):
            report.orphans_removed.append(name)


def reconcile(ctx: Context, *, remove_orphans: bool = False) -> ReconcileReport:
    """Bring every row of this host in line with the engine."""
    started = time.monotonic()

    # Rows first, engine second: a container removed in between is seen
    # as removed, and a row that gained an ID in between is left alone by
    # the compare-and-set, rather than being marked removed for a
    # container that the list, taken earlier, could not have shown.
    snapshots = _snapshots(ctx)
    asked_at = datetime.now(UTC)
    entries = ctx.engine.list_labelled(_label(ctx))
    listing = _Listing(entries, asked_at, datetime.now(UTC))

    report = ReconcileReport()
    changes: list[_Change] = []
    for snap in snapshots:
        if snap.docker_id:
            _with_id(ctx, snap, listing, changes, report)
    for snap in snapshots:
        if not snap.docker_id:
            _without_id(ctx, snap, listing, changes, report)
    _apply(ctx, changes, report)
    _orphans(ctx, listing, remove_orphans, report)

    ctx.metrics.reconciled(report)
    log.info(
        "reconcile.done",
        adopted=len(report.adopted),
        refreshed=len(report.refreshed),
        removed=len(report.removed),
        orphans=len(report.orphans),
        orphans_removed=len(report.orphans_removed),
        retryable=len(report.retryable),
        unknown=len(report.unknown),
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return report
