"""Task bodies and engine look-ups shared by the API tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker
import httpx
from fastapi.testclient import TestClient

from tests.conftest import TEST_IMAGE, unique_arn

LABEL_PREFIX = "com.amazonaws.ecs."
ECS_LABELS = (
    "task-arn",
    "container-name",
    "task-definition-family",
    "task-definition-version",
    "cluster",
)

Client = TestClient | httpx.Client


def container(name: str, *command: str, **fields: Any) -> dict[str, Any]:
    """A container definition on the test image; ``sleep`` by default."""
    return {
        "name": name,
        "image": TEST_IMAGE,
        "command": list(command) or ["sleep", "300"],
        **fields,
    }


def task_body(
    *containers: dict[str, Any], family: str = "web", version: str = "3"
) -> dict[str, Any]:
    """A task of the given containers under a fresh ARN."""
    return {
        "arn": unique_arn(family),
        "family": family,
        "version": version,
        "containers": list(containers),
    }


def register(client: Client, body: dict[str, Any]) -> str:
    """Register ``body`` and return the task ID berth gave it."""
    answer = client.post("/v1/tasks", json=body)
    assert answer.status_code == 201, answer.text
    task_id: str = answer.json()["id"]
    return task_id


def path(task_id: str, name: str, action: str = "") -> str:
    suffix = f"/{action}" if action else ""
    return f"/v1/tasks/{task_id}/containers/{name}{suffix}"


def create(client: Client, task_id: str, name: str) -> dict[str, Any]:
    """Create one container, expecting it to be new."""
    answer = client.post(path(task_id, name, "create"))
    assert answer.status_code == 201, answer.text
    view: dict[str, Any] = answer.json()
    return view


def engine_containers(
    docker_api: docker.APIClient, arn: str, name: str | None = None
) -> list[dict[str, Any]]:
    """The engine's containers labelled with ``arn`` (and ``name``)."""
    labels = [f"{LABEL_PREFIX}task-arn={arn}"]
    if name is not None:
        labels.append(f"{LABEL_PREFIX}container-name={name}")
    found: list[dict[str, Any]] = docker_api.containers(
        all=True, filters={"label": labels}
    )
    return found


def wait_for(
    client: Client,
    task_id: str,
    name: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Poll ``GET …?refresh=true`` until ``done`` holds for the container."""
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = client.get(
            path(task_id, name), params={"refresh": "true"}
        ).json()
        if done(view) or time.monotonic() > deadline:
            return view
        time.sleep(0.2)
