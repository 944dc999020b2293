"""Tasks and their containers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.api.deps import ContextDep
from app.api.problems import problem_responses
from app.service import create, lifecycle, tasks
from app.service.spec import TaskSpec
from app.service.views import ContainerView, TaskPage, TaskView

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

TaskId = Annotated[str, "task ID assigned by berth"]
StopTimeout = Annotated[
    int, Query(ge=0, le=3600, description="Seconds to wait before killing")
]

# Far past any real listing, and well inside the database's 64-bit integers.
MAX_OFFSET = 2**31 - 1

_AUTH = (401, 422)
_TASK = (*_AUTH, 404)
_DOCKER = (502, 503, 504)


@router.post(
    "",
    operation_id="register_task",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskView,
    responses={
        200: {"model": TaskView, "description": "Already registered, same spec"},
        **problem_responses(*_AUTH, 403, 409, 413, 415),
    },
)
def register_task(spec: TaskSpec, ctx: ContextDep, response: Response) -> TaskView:
    """Register a task; the same ARN and spec again returns the first one."""
    view, created = tasks.register_task(ctx, spec)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get(
    "",
    operation_id="list_tasks",
    response_model=TaskPage,
    responses=problem_responses(*_AUTH),
)
def list_tasks(
    ctx: ContextDep,
    arn: str | None = None,
    cluster: str | None = None,
    family: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> TaskPage:
    """List this host's tasks, oldest first, filtered and paginated."""
    return tasks.list_tasks(
        ctx, arn=arn, cluster=cluster, family=family, limit=limit, offset=offset
    )


@router.get(
    "/{task_id}",
    operation_id="get_task",
    response_model=TaskView,
    responses=problem_responses(*_TASK),
)
def get_task(task_id: TaskId, ctx: ContextDep) -> TaskView:
    """The task with its containers' metadata."""
    return tasks.get_task(ctx, task_id)


@router.delete(
    "/{task_id}",
    operation_id="delete_task",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*_TASK, *_DOCKER),
)
def delete_task(
    task_id: TaskId, ctx: ContextDep, timeout: StopTimeout = 10
) -> Response:
    """Stop and remove every container of the task, then forget it."""
    lifecycle.delete_task(ctx, task_id, timeout)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{task_id}/create",
    operation_id="create_task_containers",
    response_model=TaskView,
    responses=problem_responses(*_TASK, 403, 409, *_DOCKER),
)
def create_task(task_id: TaskId, ctx: ContextDep) -> TaskView:
    """Create every container not yet created, in dependency order."""
    return create.create_task(ctx, task_id)


@router.post(
    "/{task_id}/containers/{name}/create",
    operation_id="create_container",
    status_code=status.HTTP_201_CREATED,
    response_model=ContainerView,
    responses={
        200: {"model": ContainerView, "description": "Already created"},
        **problem_responses(*_TASK, 403, 409, *_DOCKER),
    },
)
def create_container(
    task_id: TaskId, name: str, ctx: ContextDep, response: Response
) -> ContainerView:
    """Create one container: 201 the first time, 200 with the same ID after."""
    view, created = create.create_container(ctx, task_id, name)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.post(
    "/{task_id}/containers/{name}/start",
    operation_id="start_container",
    response_model=ContainerView,
    responses=problem_responses(*_TASK, 403, 409, *_DOCKER),
)
def start_container(task_id: TaskId, name: str, ctx: ContextDep) -> ContainerView:
    """Start the container, creating it first when needed."""
    return lifecycle.start_container(ctx, task_id, name)


@router.post(
    "/{task_id}/containers/{name}/stop",
    operation_id="stop_container",
    response_model=ContainerView,
    responses=problem_responses(*_TASK, 409, *_DOCKER),
)
def stop_container(
    task_id: TaskId, name: str, ctx: ContextDep, timeout: StopTimeout = 10
) -> ContainerView:
    """Stop the container: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    return lifecycle.stop_container(ctx, task_id, name, timeout)


@router.get(
    "/{task_id}/containers/{name}",
    operation_id="get_container",
    response_model=ContainerView,
    responses=problem_responses(*_TASK, *_DOCKER),
)
def get_container(
    task_id: TaskId, name: str, ctx: ContextDep, refresh: bool = False
) -> ContainerView:
    """The container's metadata; ``refresh=true`` inspects the engine first."""
    if refresh:
        return lifecycle.refresh(ctx, task_id, name)
    return tasks.get_container(ctx, task_id, name)


@router.delete(
    "/{task_id}/containers/{name}",
    operation_id="remove_container",
    response_model=ContainerView,
    responses=problem_responses(*_TASK, *_DOCKER),
)
def remove_container(task_id: TaskId, name: str, ctx: ContextDep) -> ContainerView:
    """Remove the Docker container (by force); the row stays, ``REMOVED``."""
    return lifecycle.remove_container(ctx, task_id, name)
