"""The labels that mark a container as berth's, and whose it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TASK_ARN = "task-arn"
CONTAINER_NAME = "container-name"
FAMILY = "task-definition-family"
VERSION = "task-definition-version"
CLUSTER = "cluster"

# berth's own namespace, beside the ECS-compatible keys: the host that
# made a container, so that berths sharing a database leave each other's
# containers alone.
HOST_ID = "io.berth.host-id"


def ownership_labels(
    prefix: str,
    *,
    task_arn: str,
    container_name: str,
    family: str,
    version: str,
    cluster: str,
    host_id: str,
) -> dict[str, str]:
    return {
        prefix + TASK_ARN: task_arn,
        prefix + CONTAINER_NAME: container_name,
        prefix + FAMILY: family,
        prefix + VERSION: version,
        prefix + CLUSTER: cluster,
        HOST_ID: host_id,
    }


def with_ownership(
    user_labels: Mapping[str, str] | None, ownership: Mapping[str, str]
) -> dict[str, str]:
    """The user's labels with ours set last, so ours win any clash."""
    return {**(user_labels or {}), **ownership}


def owned_by(
    labels: Mapping[str, str] | None,
    prefix: str,
    task_arn: str,
    container_name: str,
    host_id: str,
) -> bool:
    """Whether labels name this task's ARN, this container and this host.

    The host too: berths on one engine may hold the same task, and each
    must leave the other's container alone, never adopt it.
    """
    labels = labels or {}
    return (
        labels.get(prefix + TASK_ARN) == task_arn
        and labels.get(prefix + CONTAINER_NAME) == container_name
        and labels.get(HOST_ID) == host_id
    )


def made_here(labels: Mapping[str, str] | None, host_id: str) -> bool:
    """Whether labels say this host's berth made the container.

    A container with the ECS labels and no host label was made by
    something else (an ECS agent, another tool), never by a berth.
    """
    return (labels or {}).get(HOST_ID) == host_id


def inspected_labels(doc: Mapping[str, Any]) -> dict[str, str] | None:
    """The labels of an inspect document, if it has any."""
    labels = (doc.get("Config") or {}).get("Labels")
    return labels if isinstance(labels, dict) else None
