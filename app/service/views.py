"""What the service answers with: tasks and containers as clients see them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from app.engine.metadata import (
    ContainerMetadata,
    MetadataError,
    PortBinding,
    VolumeMount,
)
from app.store.models import ContainerRow, TaskRow


class State(StrEnum):
    NONE = "NONE"
    CREATING = "CREATING"
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    REMOVED = "REMOVED"
    FAILED = "FAILED"


class ContainerView(BaseModel):
    task_id: str
    task_arn: str
    name: str
    status: State
    docker_name: str | None = None
    docker_id: str | None = None
    docker_status: str | None = Field(
        default=None, description="The engine's own state word, as inspected"
    )
    exit_code: int | None = None
    oom_killed: bool = False
    error: MetadataError | None = None
    port_bindings: list[PortBinding] = Field(default_factory=list)
    volumes: list[VolumeMount] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    health: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TaskView(BaseModel):
    id: str
    arn: str
    family: str
    version: str
    cluster: str
    network_mode: str
    containers: list[ContainerView]
    created_at: datetime


class TaskPage(BaseModel):
    items: list[TaskView]
    total: int
    limit: int
    offset: int


class OwnerView(BaseModel):
    """Which task and container own a Docker container."""

    task_id: str
    task_arn: str
    container_name: str
    docker_id: str | None
    docker_name: str | None
    status: State


class ReconcileReport(BaseModel):
    adopted: list[str] = Field(default_factory=list)
    refreshed: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    orphans: list[str] = Field(default_factory=list)
    retryable: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)
    orphans_removed: list[str] = Field(default_factory=list)


def load_metadata(raw: dict[str, Any] | None) -> ContainerMetadata | None:
    return ContainerMetadata.model_validate(raw) if raw else None


def container_view(row: ContainerRow, task_arn: str) -> ContainerView:
    meta = load_metadata(row.meta) or ContainerMetadata()
    error = meta.error
    if error is None and row.error_name:
        error = MetadataError(name=row.error_name, message=row.error_message or "")
    return ContainerView(
        task_id=row.task_id,
        task_arn=task_arn,
        name=row.name,
        status=State(row.status),
        docker_name=row.docker_name,
        docker_id=row.docker_id,
        docker_status=meta.docker_status,
        exit_code=meta.exit_code,
        oom_killed=meta.oom_killed,
        error=error,
        port_bindings=meta.port_bindings,
        volumes=meta.volumes,
        labels=meta.labels,
        health=meta.health,
        created_at=meta.created_at,
        started_at=meta.started_at,
        finished_at=meta.finished_at,
    )


def task_view(task: TaskRow) -> TaskView:
    return TaskView(
        id=task.id,
        arn=task.arn,
        family=task.family,
        version=task.version,
        cluster=task.cluster,
        network_mode=task.network_mode,
        containers=[container_view(c, task.arn) for c in task.containers],
        created_at=task.created_at,
    )
