"""The create protocol (DESIGN.md, "The create protocol", steps 1 to 7).

This is the one place where a request commits more than once, on purpose:
the Docker name is committed durably *before* any call that could create a
container, so a crash at any later moment leaves a name that recovery can
look up, and a retry reuses it instead of making a second container.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from docker.constants import MINIMUM_DOCKER_API_VERSION

from app.engine.client import NameInUseError, api_tuple, normalise_registry, registry_of
from app.errors import (
    BerthError,
    CannotPullImageError,
    ContainerNotFoundError,
    DependencyNotCreatedError,
    DockerTimeoutError,
    EngineUnavailableError,
    ImageNotFoundError,
    NameConflictError,
    UnsupportedDockerAPIVersionError,
)
from app.service.context import Context
from app.service.labels import (
    CONTAINER_NAME,
    HOST_ID,
    TASK_ARN,
    inspected_labels,
    owned_by,
    ownership_labels,
)
from app.service.naming import docker_name
from app.service.observe import record_inspect
from app.service.policy import check_create_body
from app.service.request import build_create_body
from app.service.spec import ContainerSpec, TaskSpec, dependency_order
from app.service.tasks import load_container, load_task
from app.service.views import ContainerView, State, TaskView, container_view, task_view
from app.store import repo
from app.store.models import ContainerRow, TaskRow, utcnow

log = structlog.get_logger(__name__)

# Named moments at which a test build of berth may kill itself, so that
# crash recovery can be tested at the protocol's weakest points.
CRASH_AFTER_NAME_COMMIT = "after-name-commit"
CRASH_AFTER_DOCKER_CREATE = "after-docker-create"

# After a 409, how long an empty inspect of the name is not yet believed.
# The engine reserves a name before it registers the container, so a create
# still in flight under that name (one sent before a crash or a timeout)
# answers "in use" while an inspect finds nothing. Taking a fresh name then
# would make a second container once the first create lands.
NAME_SETTLE_S = 3.0
NAME_SETTLE_FIRST_POLL_S = 0.1


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


def _gone(plan: _Plan) -> ContainerNotFoundError:
    return ContainerNotFoundError(
        f"container {plan.container.name!r} of task {plan.task_id} was deleted "
        "while it was being created"
    )


def _claim_name(ctx: Context, plan: _Plan, old: str | None) -> str:
    """Step 4: store a new Docker name durably, or learn the winner's."""
    new = _fresh_name(ctx, plan)
    with ctx.db.transaction() as session:
        if repo.claim_docker_name(session, plan.row_id, old, new):
            return new

    with ctx.db.transaction() as session:
        row = session.get(ContainerRow, plan.row_id)
        if row is None or row.docker_name is None:
            raise _gone(plan)
        return row.docker_name


def _name_for_create(ctx: Context, plan: _Plan) -> str:
    if plan.docker_name and plan.reuse_name:
        with ctx.db.transaction() as session:
            kept = repo.update_container_if(
                session,
                plan.row_id,
                {"docker_name": plan.docker_name},
                status=State.CREATING,
            )
        if not kept:
            raise _gone(plan)
        return plan.docker_name
    return _claim_name(ctx, plan, plan.docker_name)


def _record_error(
    ctx: Context,
    plan: _Plan,
    exc: BerthError,
    docker_name: str,
    started: float,
    state: State = State.NONE,
) -> None:
    # Only while the row has no ID: the event watcher may have adopted the
    # container meanwhile, and an error must not hide a container we have.
    with ctx.db.transaction() as session:
        repo.update_container_if(
            session,
            plan.row_id,
            {"docker_id": None},
            status=state,
            error_name=exc.error_name,
            error_message=exc.detail,
        )
    log.warning(
        "container.create_failed",
        task_arn=plan.task_arn,
        container=plan.container.name,
        docker_name=docker_name,
        docker_id=None,
        error_name=exc.error_name,
        error=exc.detail,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )


def _ours(ctx: Context, plan: _Plan, labels: dict[str, str] | None) -> bool:
    """Made by this host's berth for this task's container, and no other."""
    return owned_by(
        labels,
        ctx.settings.label_prefix,
        plan.task_arn,
        plan.container.name,
        ctx.settings.host_id,
    )


@dataclass(frozen=True)
class _Made:
    """The container a create ended with: its Docker ID and name."""

    docker_id: str
    docker_name: str


def _adopted(plan: _Plan, docker_id: str, name: str, why: str) -> _Made:
    log.info(
        "container.adopted",
        task_arn=plan.task_arn,
        container=plan.container.name,
        docker_name=name,
        docker_id=docker_id,
        reason=why,
    )
    return _Made(docker_id, name)


def _inspect_settled(ctx: Context, name: str) -> dict[str, Any] | None:
    """Inspect ``name``, giving a create in flight under it time to land."""
    deadline = time.monotonic() + NAME_SETTLE_S
    pause = NAME_SETTLE_FIRST_POLL_S
    while True:
        doc = ctx.engine.inspect(name)
        if doc is not None or time.monotonic() >= deadline:
            return doc
        log.debug("container.name_settling", docker_name=name)
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _find_by_labels(ctx: Context, plan: _Plan) -> _Made | None:
    """Ours under any name: the oldest container labelled for this one.

    Filtered by this host's label as well: another berth on the engine
    may hold a container for the same task, and that one is not ours.
    """
    prefix = ctx.settings.label_prefix
    found = ctx.engine.list_labelled(
        f"{prefix}{TASK_ARN}={plan.task_arn}",
        f"{prefix}{CONTAINER_NAME}={plan.container.name}",
        f"{HOST_ID}={ctx.settings.host_id}",
    )
    found.sort(key=lambda c: int(c.get("Created") or 0))
    for entry in found:
        names = entry.get("Names") or []
        if entry.get("Id") and names and _ours(ctx, plan, entry.get("Labels")):
            return _Made(str(entry["Id"]), str(names[0]).lstrip("/"))
    return None


def _adopt_after_conflict(ctx: Context, plan: _Plan, name: str) -> _Made | None:
    """The 409 branch: adopt our own container, refuse a stranger's.

    None means the engine holds the name but has no container under it,
    and no container of ours exists under another name either.
    """
    doc = _inspect_settled(ctx, name)
    if doc is None:
        made = _find_by_labels(ctx, plan)
        if made is None:
            return None
        return _adopted(plan, made.docker_id, made.docker_name, "labels")
    if _ours(ctx, plan, inspected_labels(doc)):
        return _adopted(plan, str(doc["Id"]), name, "name_in_use")
    raise NameConflictError(
        f"Docker name {name} belongs to a container berth did not make for "
        f"{plan.container.name!r}; it was left untouched"
    )


def _adopt_after_timeout(ctx: Context, plan: _Plan, name: str) -> _Made | None:
    """After a lost answer: did the engine create it anyway?"""
    try:
        doc = ctx.engine.inspect(name)
    except BerthError:
        return None
    if doc is not None and _ours(ctx, plan, inspected_labels(doc)):
        return _adopted(plan, str(doc["Id"]), name, "lost_answer")
    return None


def _pull(ctx: Context, image: str) -> None:
    auth = None
    settings = ctx.settings
    if (
        settings.registry_username
        and settings.registry_password
        and registry_of(image) == normalise_registry(settings.registry_address)
    ):
        auth = {
            "username": settings.registry_username,
            "password": settings.registry_password.get_secret_value(),
        }
    started = time.monotonic()
    try:
        ctx.engine.pull(image, auth, settings.image_pull_timeout)
    except CannotPullImageError as exc:
        # Without the image there is nothing to create from, whatever kept
        # the registry from answering: the image is not found (a 4xx). Only
        # a pull that would have refreshed an image the engine has is the
        # registry's failure.
        if not ctx.engine.image_present(image):
            raise ImageNotFoundError(exc.detail) from exc
        raise
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


@dataclass
class _Attempt:
    """The name the create is trying now; a reserved name swaps it once."""

    name: str


def _create_under(ctx: Context, plan: _Plan, name: str) -> _Made | None:
    """One create under ``name``; None when the name is held by nothing."""
    try:
        return _Made(_engine_create(ctx, plan, name), name)
    except NameInUseError:
        return _adopt_after_conflict(ctx, plan, name)


def _docker_create(ctx: Context, plan: _Plan, attempt: _Attempt) -> _Made:
    """Step 6: create under the stored name and come back with a container."""
    made = _create_under(ctx, plan, attempt.name)
    if made is not None:
        return made

    # The engine kept the name reserved after an earlier failure although
    # no container has it: take a fresh name, durably, and try once more.
    log.info(
        "container.name_reserved",
        task_arn=plan.task_arn,
        container=plan.container.name,
        docker_name=attempt.name,
    )
    attempt.name = _claim_name(ctx, plan, attempt.name)
    made = _create_under(ctx, plan, attempt.name)
    if made is not None:
        return made
    raise NameConflictError(
        f"the engine reports Docker name {attempt.name} in use but has no such "
        "container"
    )


def _create_or_record(ctx: Context, plan: _Plan, name: str) -> _Made:
    attempt = _Attempt(name)
    started = time.monotonic()
    try:
        return _docker_create(ctx, plan, attempt)
    except (DockerTimeoutError, EngineUnavailableError) as exc:
        made = _adopt_after_timeout(ctx, plan, attempt.name)
        if made is not None:
            return made
        # Unknown whether it happened: leave CREATING, with the name stored,
        # for the next create or recovery to look up.
        _record_error(ctx, plan, exc, attempt.name, started, State.CREATING)
        raise
    except BerthError as exc:
        _record_error(ctx, plan, exc, attempt.name, started)
        raise


def _store_made(
    ctx: Context, plan: _Plan, made: _Made, doc: dict[str, Any] | None
) -> ContainerView | None:
    """Store the ID, name and inspect; None when the row is gone.

    Not a durable commit: the name commit before the create was, and with
    it recovery finds this container again should a power cut lose this.
    """
    with ctx.db.transaction(durable=False) as session:
        row = session.get(ContainerRow, plan.row_id)
        if row is None:
            return None
        row.docker_id = made.docker_id
        row.docker_name = made.docker_name
        if doc is not None:
            # Keeps the row as it is if recovery stored something newer.
            record_inspect(row, doc)
        if row.status in (State.CREATING, State.NONE):
            row.status = State.CREATED
            row.error_name = None
            row.error_message = None
            row.updated_at = utcnow()
        return container_view(row, plan.task_arn)


def _finish(ctx: Context, plan: _Plan, made: _Made) -> ContainerView:
    """Store the ID and what an inspect says, whatever the inspect does."""
    try:
        doc = ctx.engine.inspect(made.docker_id)
    except BerthError:
        doc = None

    view = _store_made(ctx, plan, made, doc)
    if view is not None:
        return view

    # The task was deleted while Docker was busy creating: the container
    # belongs to nothing, and nobody else would ever remove it.
    try:
        ctx.engine.remove(made.docker_id)
    except BerthError as exc:
        log.warning(
            "container.orphaned",
            docker_id=made.docker_id,
            error_name=exc.error_name,
        )
    raise _gone(plan)


def _create_locked(ctx: Context, task_id: str, name: str) -> tuple[ContainerView, bool]:
    with ctx.db.transaction() as session:
        task, row = load_container(ctx, session, task_id, name)
        if row.docker_id and row.status != State.REMOVED:
            return container_view(row, task.arn), False

    # Planning may ask the engine its version: never inside a transaction.
    plan = _plan(ctx, task, row)
    if plan.container.pull_policy == "always":
        _pull(ctx, plan.container.image)

    started = time.monotonic()
    name_used = _name_for_create(ctx, plan)
    _crash_point(ctx, CRASH_AFTER_NAME_COMMIT)

    with creating_under(ctx, name_used):
        made = _create_or_record(ctx, plan, name_used)
        _crash_point(ctx, CRASH_AFTER_DOCKER_CREATE)

        view = _finish(ctx, plan, made)
    log.info(
        "container.created",
        task_arn=plan.task_arn,
        container=name,
        docker_name=made.docker_name,
        docker_id=made.docker_id,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return view, True


def _lock_key(task_id: str, name: str) -> str:
    return f"container:{task_id}/{name}"


@contextmanager
def container_lock(ctx: Context, task_id: str, name: str) -> Iterator[None]:
    """Step 1: one create (or removal) of a container at a time, host-wide."""
    key = _lock_key(task_id, name)
    with ctx.locks.hold(key), ctx.db.lock(key):
        yield


def create_in_flight(ctx: Context, task_id: str, name: str) -> bool:
    """Whether this process is creating (or removing) the container now."""
    return ctx.locks.busy(_lock_key(task_id, name))


def _name_key(docker_name: str) -> str:
    return f"docker-name:{docker_name}"


@contextmanager
def creating_under(ctx: Context, docker_name: str) -> Iterator[None]:
    """Mark a create of this process as in flight under ``docker_name``."""
    with ctx.locks.hold(_name_key(docker_name)):
        yield


def creating_name(ctx: Context, docker_name: str) -> bool:
    """Whether a create of this process is in flight under ``docker_name``.

    The event watcher asks before it looks the name up: every create sends
    it a ``create`` event, which its own create answers (and stores) anyway.
    """
    return ctx.locks.busy(_name_key(docker_name))


def create_container(
    ctx: Context, task_id: str, name: str
) -> tuple[ContainerView, bool]:
    """Create one container; returns it and whether this call created it."""
    with (
        ctx.metrics.create_attempt() as attempt,
        container_lock(ctx, task_id, name),
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
