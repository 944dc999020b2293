"""Registering, reading and listing tasks."""

from __future__ import annotations

import hashlib
import json
import uuid

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import ContainerNotFoundError, TaskConflictError, TaskNotFoundError
from app.service.context import Context
from app.service.policy import check_task
from app.service.spec import TaskSpec
from app.service.views import (
    ContainerView,
    OwnerView,
    State,
    TaskPage,
    TaskView,
    container_view,
    task_view,
)
from app.store import repo
from app.store.models import ContainerRow, TaskRow, utcnow

log = structlog.get_logger(__name__)


def spec_hash(spec: TaskSpec) -> str:
    canonical = json.dumps(
        spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _with_cluster(spec: TaskSpec, default: str) -> TaskSpec:
    """The spec with its cluster spelled out, as berth answers it.

    A client that registers again with the cluster berth told it, or
    without the one it wrote the first time, sends the same task.
    """
    return spec.model_copy(update={"cluster": spec.cluster or default})


def _new_task(ctx: Context, spec: TaskSpec, digest: str) -> TaskRow:
    now = utcnow()
    host_id = ctx.settings.host_id
    task = TaskRow(
        id=uuid.uuid4().hex,
        arn=spec.arn,
        family=spec.family,
        version=str(spec.version),
        cluster=spec.cluster or ctx.settings.cluster,
        network_mode=spec.network_mode,
        host_id=host_id,
        spec=spec.model_dump(mode="json"),
        spec_hash=digest,
        created_at=now,
    )
    task.containers = [
        ContainerRow(
            name=c.name,
            position=i,
            host_id=host_id,
            status=State.NONE,
            created_at=now,
            updated_at=now,
        )
        for i, c in enumerate(spec.containers)
    ]
    return task


def _existing(task: TaskRow, digest: str) -> TaskView:
    # Hashed again from the stored spec: rows stored before the cluster was
    # spelled out keep matching the body that registered them.
    stored = _with_cluster(TaskSpec.model_validate(task.spec), task.cluster)
    if spec_hash(stored) != digest:
        raise TaskConflictError(
            f"task {task.arn} is already registered with a different spec"
        )
    return task_view(task)


def register_task(ctx: Context, spec: TaskSpec) -> tuple[TaskView, bool]:
    """Store a task; the same spec again is a no-op, another is a conflict.

    Returns the task and whether it was new. A task the host policy
    denies is refused before anything is stored.
    """
    check_task(ctx.policy, spec)
    spec = _with_cluster(spec, ctx.settings.cluster)
    digest = spec_hash(spec)
    try:
        with ctx.db.transaction() as session:
            existing = repo.get_task_by_arn(session, ctx.settings.host_id, spec.arn)
            if existing is not None:
                return _existing(existing, digest), False
            task = _new_task(ctx, spec, digest)
            repo.add_task(session, task)
            view = task_view(task)
    except IntegrityError:
        # Another request registered the same ARN between our read and
        # our insert; its row decides.
        with ctx.db.transaction() as session:
            existing = repo.get_task_by_arn(session, ctx.settings.host_id, spec.arn)
            if existing is None:
                raise
            return _existing(existing, digest), False

    log.info("task.registered", task_arn=spec.arn, task_id=view.id)
    return view, True


# How much of an identifier a caller sent is repeated in an error: enough
# to tell which request it was, never a page of whatever was sent.
SHOWN_CHARS = 64


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"


def _no_task(task_id: str) -> TaskNotFoundError:
    return TaskNotFoundError(f"no task {_shown(task_id)}")


def load_task(ctx: Context, session: Session, task_id: str) -> TaskRow:
    """The task, if it exists and belongs to this host."""
    task = repo.get_task(session, task_id)
    if task is None or task.host_id != ctx.settings.host_id:
        raise _no_task(task_id)
    return task


def _no_container(task_id: str, name: str) -> ContainerNotFoundError:
    return ContainerNotFoundError(
        f"task {_shown(task_id)} has no container {_shown(name)!r}"
    )


def load_container(
    ctx: Context, session: Session, task_id: str, name: str
) -> tuple[TaskRow, ContainerRow]:
    task = load_task(ctx, session, task_id)
    row = next((c for c in task.containers if c.name == name), None)
    if row is None:
        raise _no_container(task_id, name)
    return task, row


def get_task(ctx: Context, task_id: str) -> TaskView:
    with ctx.db.transaction() as session:
        return task_view(load_task(ctx, session, task_id))


def get_container(ctx: Context, task_id: str, name: str) -> ContainerView:
    """The stored view of one container: one query, no spec read."""
    host_id = ctx.settings.host_id
    with ctx.db.transaction() as session:
        found = repo.get_container_with_arn(session, host_id, task_id, name)
        if found is not None:
            row, arn = found
            return container_view(row, arn)
        if not repo.task_exists(session, host_id, task_id):
            raise _no_task(task_id)
    raise _no_container(task_id, name)


def list_tasks(
    ctx: Context,
    *,
    arn: str | None,
    cluster: str | None,
    family: str | None,
    limit: int,
    offset: int,
) -> TaskPage:
    with ctx.db.transaction() as session:
        rows, total = repo.list_tasks(
            session,
            host_id=ctx.settings.host_id,
            arn=arn,
            cluster=cluster,
            family=family,
            limit=limit,
            offset=offset,
        )
        items = [task_view(t) for t in rows]
    return TaskPage(items=items, total=total, limit=limit, offset=offset)


def find_owner(ctx: Context, ref: str) -> OwnerView:
    """Which task and container own a Docker container, by ID or name."""
    with ctx.db.transaction() as session:
        row = repo.find_container_by_docker_ref(session, ctx.settings.host_id, ref)
        if row is None:
            raise ContainerNotFoundError(
                f"berth owns no Docker container {_shown(ref)!r}"
            )
        return OwnerView(
            task_id=row.task_id,
            task_arn=row.task.arn,
            container_name=row.name,
            docker_id=row.docker_id,
            docker_name=row.docker_name,
            status=State(row.status),
        )
