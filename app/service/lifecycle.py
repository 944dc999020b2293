"""Start, stop, refresh and remove containers; delete whole tasks."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from app.errors import BerthError, ContainerStateError
from app.service.context import Context
from app.service.create import container_lock, create_container
from app.service.labels import HOST_ID, TASK_ARN, inspected_labels, owned_by
from app.service.observe import record_gone, record_inspect
from app.service.policy import bind_sources, check_host_path
from app.service.request import task_volume_source
from app.service.spec import TaskSpec, dependency_order
from app.service.tasks import load_container, load_task
from app.service.views import ContainerView, State, container_view
from app.store import repo

log = structlog.get_logger(__name__)


def _docker_ref(ctx: Context, task_id: str, name: str) -> tuple[str, str | None]:
    """The task's ARN and the container's live Docker ID, if it has one."""
    with ctx.db.transaction() as session:
        task, row = load_container(ctx, session, task_id, name)
        # A removed container's ID names nothing on the engine any more.
        live = row.docker_id if row.status != State.REMOVED else None
        return task.arn, live


def refresh(ctx: Context, task_id: str, name: str) -> ContainerView:
    """Inspect the container and store what the engine says.

    An inspect that fails leaves the row as it was: unknown is not stopped.
    """
    _, docker_id = _docker_ref(ctx, task_id, name)
    doc = ctx.engine.inspect(docker_id) if docker_id else None

    with ctx.db.transaction(durable=False) as session:
        task, row = load_container(ctx, session, task_id, name)
        if doc is not None:
            record_inspect(row, doc)
        elif docker_id and row.docker_id == docker_id:
            record_gone(row)
        return container_view(row, task.arn)


def _act(
    ctx: Context,
    task_id: str,
    name: str,
    action: Callable[[str], None],
    event: str,
) -> ContainerView:
    arn, docker_id = _docker_ref(ctx, task_id, name)
    if not docker_id:
        raise ContainerStateError(f"container {name!r} has no Docker container")

    started = time.monotonic()
    try:
        action(docker_id)
    except BerthError as exc:
        log.warning(
            f"{event}_failed",
            task_arn=arn,
            container=name,
            docker_id=docker_id,
            error_name=exc.error_name,
            error=exc.detail,
        )
        view = refresh_quietly(ctx, task_id, name)
        if view is not None and view.status == State.REMOVED:
            # Removed behind berth's back: a state to report, not an
            # engine failure.
            raise ContainerStateError(
                f"container {name!r} has no Docker container any more"
            ) from exc
        raise

    view = refresh(ctx, task_id, name)
    log.info(
        event,
        task_arn=arn,
        container=name,
        docker_name=view.docker_name,
        docker_id=docker_id,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return view


def refresh_quietly(ctx: Context, task_id: str, name: str) -> ContainerView | None:
    try:
        return refresh(ctx, task_id, name)
    except BerthError:
        return None


def _host_paths_still_allowed(ctx: Context, docker_id: str) -> None:
    """Judge the container's host paths again, as they resolve now.

    The engine resolves a bind's source when it starts the container, not
    when it creates it: a link made since (by another container writing
    into an allowed folder) could lead anywhere by then.
    """
    doc = ctx.engine.inspect(docker_id)
    host = (doc or {}).get("HostConfig")
    if not isinstance(host, dict):
        return
    for source in bind_sources(host):
        check_host_path(ctx.policy, source)


def start_container(ctx: Context, task_id: str, name: str) -> ContainerView:
    """Start the container, creating it first if it has not been."""
    _, docker_id = _docker_ref(ctx, task_id, name)
    if not docker_id:
        create_container(ctx, task_id, name)

    def start(ref: str) -> None:
        _host_paths_still_allowed(ctx, ref)
        ctx.engine.start(ref)

    return _act(ctx, task_id, name, start, "container.started")


def stop_container(
    ctx: Context, task_id: str, name: str, timeout: int
) -> ContainerView:
    return _act(
        ctx,
        task_id,
        name,
        lambda ref: ctx.engine.stop(ref, timeout),
        "container.stopped",
    )


def remove_container(ctx: Context, task_id: str, name: str) -> ContainerView:
    """Remove the Docker container, by ID or, when none was stored, by name.

    Under the create lock: a create in flight finishes first, so its ID is
    stored and removed here, instead of landing after the removal.
    """
    with container_lock(ctx, task_id, name):
        return _remove_locked(ctx, task_id, name)


def _ours_by_name(ctx: Context, arn: str, name: str, docker_name: str) -> bool:
    """Whether the container under a stored name is the one berth made.

    A row with no ID holds a name the engine may have given someone else
    (a create refused with NameConflictError keeps it for the retry): that
    container is left alone, as the create protocol promised.
    """
    doc = ctx.engine.inspect(docker_name)
    if doc is None:
        return False
    prefix, host = ctx.settings.label_prefix, ctx.settings.host_id
    return owned_by(inspected_labels(doc), prefix, arn, name, host)


def _remove_locked(ctx: Context, task_id: str, name: str) -> ContainerView:
    with ctx.db.transaction() as session:
        task, row = load_container(ctx, session, task_id, name)
        ref = row.docker_id or row.docker_name
        by_name = row.docker_id is None
        arn = task.arn

    started = time.monotonic()
    if ref and by_name and not _ours_by_name(ctx, arn, name, ref):
        ref = None
    if ref:
        ctx.engine.remove(ref)

    with ctx.db.transaction() as session:
        task, row = load_container(ctx, session, task_id, name)
        if ref:
            record_gone(row)
        view = container_view(row, task.arn)
    log.info(
        "container.removed",
        task_arn=arn,
        container=name,
        docker_name=view.docker_name,
        docker_id=view.docker_id,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return view


def delete_task(ctx: Context, task_id: str, timeout: int) -> None:
    """Stop and remove every container of the task, then forget the task."""
    with ctx.db.transaction() as session:
        task = load_task(ctx, session, task_id)
        spec = TaskSpec.model_validate(task.spec)
        arn = task.arn
        running = {c.name for c in task.containers if c.status == State.RUNNING}

    # Dependents first: they hold links into their dependencies.
    for name in reversed(dependency_order(spec)):
        if name in running and timeout > 0:
            _stop_quietly(ctx, task_id, name, timeout)
        remove_container(ctx, task_id, name)
    _remove_strays(ctx, arn)
    _remove_task_volumes(ctx, task_id, spec)

    with ctx.db.transaction() as session:
        repo.delete_task(session, task_id)
    log.info("task.deleted", task_arn=arn, task_id=task_id)


def _remove_task_volumes(ctx: Context, task_id: str, spec: TaskSpec) -> None:
    """Remove the Docker volumes berth made for the task's volumes.

    Their names hold the task's ID, so once the task is forgotten nothing
    could use them again. Host paths are the operator's and are kept.
    """
    for volume in spec.volumes:
        if volume.host_path:
            continue
        name = task_volume_source(task_id, volume)
        try:
            ctx.engine.remove_volume(name)
        except BerthError as exc:
            # A volume left behind costs disk, not correctness: the task
            # is deleted all the same.
            log.warning(
                "volume.remove_failed",
                task_id=task_id,
                volume=name,
                error_name=exc.error_name,
                error=exc.detail,
            )


def _remove_strays(ctx: Context, arn: str) -> None:
    """Remove whatever else of this host still carries the task's labels.

    A create whose name changed after the engine held the old one, or a
    duplicate left by an older version, has no row pointing at it; once
    the rows are gone nothing would ever find it again.
    """
    prefix = ctx.settings.label_prefix
    strays = ctx.engine.list_labelled(
        f"{prefix}{TASK_ARN}={arn}", f"{HOST_ID}={ctx.settings.host_id}"
    )
    for stray in strays:
        docker_id = str(stray.get("Id") or "")
        if docker_id:
            ctx.engine.remove(docker_id)
            log.info("container.stray_removed", task_arn=arn, docker_id=docker_id)


def _stop_quietly(ctx: Context, task_id: str, name: str, timeout: int) -> None:
    # A stop that fails is no reason to keep the container: removal with
    # force follows either way.
    try:
        stop_container(ctx, task_id, name, timeout)
    except (BerthError, ContainerStateError):
        return
