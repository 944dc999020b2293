"""The create protocol (DESIGN.md, "The create protocol", steps 1 to 7).

This is the one place where a request commits more than once, on purpose:
the Docker name is committed durably *before* any call that could create a
container, so a crash at any later moment leaves a name that recovery can
look up, and a retry reuses it instead of making a second container.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import structlog
from docker.constants import MINIMUM_DOCKER_API_VERSION

from app.engine.client import NameInUseError, api_tuple
from app.errors import (
    BerthError,
    DependencyNotCreatedError,
    DockerTimeoutError,
    EngineUnavailableError,
    ImageNotFoundError,
    NameConflictError,
    UnsupportedDockerAPIVersionError,
)
from app.service.context import Context
from app.service.labels import owned_by, ownership_labels
from app.service.naming import docker_name
from app.service.observe import record_inspect
from app.service.policy import check_create_body
from app.service.request import build_create_body
from app.service.spec import ContainerSpec, TaskSpec, dependency_order
from app.service.tasks import load_container, load_task
from app.service.views import ContainerView, State, TaskView, container_view, task_view
from app.store import repo
from app.store.models import ContainerRow, TaskRow

log = structlog.get_logger(__name__)

# Named moments at which a test build of berth may kill itself, so that
# crash recovery can be tested at the protocol's weakest points.
CRASH_AFTER_NAME_COMMIT = "after-name-commit"
CRASH_AFTER_DOCKER_CREATE = "after-docker-create"


@dataclass(frozen=True)
class _Plan:
    """Everything step 5 needs, read in one short transaction."""

    row_id: int
    task_id: str
    task_arn: str
    container: ContainerSpec
    docker_name: str | None
    reuse_name: bool
    body: dict[str, Any]
    api_version: str
    spec: TaskSpec


def _crash_point(ctx: Context, point: str) -> None:
    if ctx.settings.crash_at == point:
        os._exit(137)


def resolve_api_version(ctx: Context, requested: str | None) -> str:
    """The API version a container is created with (step 3)."""
    engine = ctx.engine.version()
    if requested is None:
        return engine.api_version

    floor = max(
        api_tuple(engine.min_api_version), api_tuple(MINIMUM_DOCKER_API_VERSION)
    )
    wanted = api_tuple(requested)
    if wanted > api_tuple(engine.api_version):
        raise UnsupportedDockerAPIVersionError(
            f"Docker API {requested} is above the engine's maximum {engine.api_version}"
        )
    if wanted < floor:
        raised = f"{floor[0]}.{floor[1]}"
        log.info("docker_api_version.raised", requested=requested, used=raised)
        return raised
    # "1.030" and "1.30" are one version; one spelling keeps one client.
    return f"{wanted[0]}.{wanted[1]}"


def _sibling_names(task: TaskRow, container: ContainerSpec) -> dict[str, str]:
    rows = {c.name: c for c in task.containers}
    names = {}
    for dependency in container.dependencies():
        sibling = rows[dependency]
        if (
            not sibling.docker_id
            or not sibling.docker_name
            or sibling.status == State.REMOVED
        ):
            raise DependencyNotCreatedError(
                f"container {container.name!r} needs {dependency!r}, which has "
                "no Docker container yet"
            )
        names[dependency] = sibling.docker_name
    return names


def _plan(ctx: Context, task: TaskRow, row: ContainerRow) -> _Plan:
    """Steps 3 and 5: everything that can fail without creating anything."""
    spec = TaskSpec.model_validate(task.spec)
    container = spec.container(row.name)
    assert container is not None  # rows are made from the spec

    api_version = resolve_api_version(ctx, container.docker_api_version)
    siblings = _sibling_names(task, container)
    ownership = ownership_labels(
        ctx.settings.label_prefix,
        task_arn=task.arn,
        container_name=container.name,
        family=task.family,
        version=task.version,
        cluster=task.cluster,
        host_id=ctx.settings.host_id,
    )
    body = build_create_body(spec, task.id, container, siblings, ownership)
    check_create_body(ctx.policy, body)
    return _Plan(
        row_id=row.id,
        task_id=task.id,
        task_arn=task.arn,
        container=container,
        docker_name=row.docker_name,
        reuse_name=row.status != State.REMOVED,
        body=body,
        api_version=api_version,
        spec=spec,
    )


def _fresh_name(ctx: Context, plan: _Plan) -> str:
    return docker_name(
        ctx.settings.name_prefix,
        plan.spec.family,
        str(plan.spec.version),
        plan.container.name,
    )


def _claim_name(ctx: Context, plan: _Plan, old: str | None) -> str:
    """Step 4: store a new Docker name durably, or learn the winner's."""
    new = _fresh_name(ctx, plan)
    with ctx.db.transaction() as session:
        if repo.claim_docker_name(session, plan.row_id, old, new):
            return new

    with ctx.db.transaction() as session:
        row = session.get(ContainerRow, plan.row_id)
        assert row is not None and row.docker_name is not None
        return row.docker_name


def _name_for_create(ctx: Context, plan: _Plan) -> str:
    if plan.docker_name and plan.reuse_name:
        with ctx.db.transaction() as session:
            repo.update_container(session, plan.row_id, status=State.CREATING)
        return plan.docker_name
    return _claim_name(ctx, plan, plan.docker_name)


def _record_error(
    ctx: Context, plan: _Plan, exc: BerthError, state: State = State.NONE
) -> None:
    with ctx.db.transaction() as session:
        repo.update_container(
            session,
            plan.row_id,
            status=state,
            error_name=exc.error_name,
            error_message=exc.detail,
        )
    log.warning(
        "container.create_failed",
        task_arn=plan.task_arn,
        container=plan.container.name,
        error_name=exc.error_name,
        error=exc.detail,
    )


def _ours(ctx: Context, plan: _Plan, doc: dict[str, Any]) -> bool:
    labels = (doc.get("Config") or {}).get("Labels")
    return owned_by(
        labels, ctx.settings.label_prefix, plan.task_arn, plan.container.name
    )


def _adopt_after_conflict(ctx: Context, plan: _Plan, name: str) -> str | None:
    """The 409 branch: adopt our own container, refuse a stranger's.

    None means the engine holds the name but has no container under it.
    """
    doc = ctx.engine.inspect(name)
    if doc is None:
        return None
    if _ours(ctx, plan, doc):
        log.info(
            "container.adopted",
            task_arn=plan.task_arn,
            container=plan.container.name,
            docker_name=name,
            docker_id=doc.get("Id"),
        )
        return str(doc["Id"])
    raise NameConflictError(
        f"Docker name {name} belongs to a container berth did not make for "
        f"{plan.container.name!r}; it was left untouched"
    )


def _adopt_after_timeout(ctx: Context, plan: _Plan, name: str) -> str | None:
    """After a lost answer: did the engine create it anyway?"""
    try:
        doc = ctx.engine.inspect(name)
    except BerthError:
        return None
    if doc is not None and _ours(ctx, plan, doc):
        return str(doc["Id"])
    return None


def _pull(ctx: Context, image: str) -> None:
    auth = None
    settings = ctx.settings
    if settings.registry_username and settings.registry_password:
        auth = {
            "username": settings.registry_username,
            "password": settings.registry_password.get_secret_value(),
        }
    started = time.monotonic()
    ctx.engine.pull(image, auth, settings.image_pull_timeout)
    log.info(
        "image.pulled",
        image=image,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )


def _engine_create(ctx: Context, plan: _Plan, name: str) -> str:
    """Docker create, pulling the image once when the policy allows it."""
    try:
        return ctx.engine.create(name, plan.body, plan.api_version)
    except ImageNotFoundError:
        if plan.container.pull_policy == "never":
            raise
    _pull(ctx, plan.container.image)
    return ctx.engine.create(name, plan.body, plan.api_version)


def _docker_create(ctx: Context, plan: _Plan, name: str) -> str:
    """Step 6: create under ``name`` and come back with a Docker ID."""
    try:
        return _engine_create(ctx, plan, name)
    except NameInUseError:
        adopted = _adopt_after_conflict(ctx, plan, name)
        if adopted is not None:
            return adopted

    # The engine kept the name reserved after an earlier failure although
    # no container has it: take a fresh name, durably, and try once more.
    log.info(
        "container.name_reserved",
        task_arn=plan.task_arn,
        container=plan.container.name,
        docker_name=name,
    )
    fresh = _claim_name(ctx, plan, name)
    try:
        return _engine_create(ctx, plan, fresh)
    except NameInUseError:
        adopted = _adopt_after_conflict(ctx, plan, fresh)
        if adopted is not None:
            return adopted
        raise NameConflictError(
            f"the engine reports Docker name {fresh} in use but has no such container"
        ) from None


def _create_or_record(ctx: Context, plan: _Plan, name: str) -> str:
    try:
        return _docker_create(ctx, plan, name)
    except (DockerTimeoutError, EngineUnavailableError) as exc:
        adopted = _adopt_after_timeout(ctx, plan, name)
        if adopted is not None:
            return adopted
        # Unknown whether it happened: leave CREATING for recovery.
        _record_error(ctx, plan, exc, State.CREATING)
        raise
    except BerthError as exc:
        _record_error(ctx, plan, exc)
        raise


def _finish(ctx: Context, plan: _Plan, docker_id: str) -> ContainerView:
    """Store the ID and what an inspect says, whatever the inspect does."""
    try:
        doc = ctx.engine.inspect(docker_id)
    except BerthError:
        doc = None

    with ctx.db.transaction() as session:
        task, row = load_container(ctx, session, plan.task_id, plan.container.name)
        if doc is not None:
            record_inspect(row, doc)
        else:
            row.docker_id = docker_id
            row.status = State.CREATED
            row.error_name = None
            row.error_message = None
        return container_view(row, task.arn)


def _create_locked(ctx: Context, task_id: str, name: str) -> tuple[ContainerView, bool]:
    with ctx.db.transaction() as session:
        task, row = load_container(ctx, session, task_id, name)
        if row.docker_id and row.status != State.REMOVED:
            return container_view(row, task.arn), False
        plan = _plan(ctx, task, row)

    if plan.container.pull_policy == "always":
        _pull(ctx, plan.container.image)

    started = time.monotonic()
    name_used = _name_for_create(ctx, plan)
    _crash_point(ctx, CRASH_AFTER_NAME_COMMIT)

    docker_id = _create_or_record(ctx, plan, name_used)
    _crash_point(ctx, CRASH_AFTER_DOCKER_CREATE)

    view = _finish(ctx, plan, docker_id)
    log.info(
        "container.created",
        task_arn=plan.task_arn,
        container=name,
        docker_name=view.docker_name,
        docker_id=docker_id,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return view, True


def create_container(
    ctx: Context, task_id: str, name: str
) -> tuple[ContainerView, bool]:
    """Create one container; returns it and whether this call created it."""
    key = f"container:{task_id}/{name}"
    with (
        ctx.metrics.create_attempt() as attempt,
        ctx.locks.hold(key),
        ctx.db.lock(key),
    ):
        view, attempt.created = _create_locked(ctx, task_id, name)
    return view, attempt.created


def create_task(ctx: Context, task_id: str) -> TaskView:
    """Create every container not yet created, dependencies first."""
    with ctx.db.transaction() as session:
        spec = TaskSpec.model_validate(load_task(ctx, session, task_id).spec)

    for name in dependency_order(spec):
        create_container(ctx, task_id, name)

    with ctx.db.transaction() as session:
        return task_view(load_task(ctx, session, task_id))
