"""Helpers for the crash-safety tests: task bodies, what the engine holds,
and the environment of a berth server in a subprocess."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import docker

from app.config import Settings
from tests.conftest import HOST_LABEL, TEST_IMAGE

T = TypeVar("T")

LABEL_PREFIX = "com.amazonaws.ecs."
TASK_ARN_LABEL = LABEL_PREFIX + "task-arn"
CONTAINER_NAME_LABEL = LABEL_PREFIX + "container-name"


def container(name: str, *command: str) -> dict[str, Any]:
    """A container definition on the test image; sleeps unless told."""
    return {
        "name": name,
        "image": TEST_IMAGE,
        "command": list(command) or ["sleep", "300"],
    }


def task_body(arn: str, *containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "arn": arn,
        "family": "crash",
        "version": "1",
        "containers": list(containers) or [container("main")],
    }


def our_labels(arn: str, name: str, host_id: str) -> dict[str, str]:
    """The labels berth puts on a container it makes, as far as it reads them."""
    return {TASK_ARN_LABEL: arn, CONTAINER_NAME_LABEL: name, HOST_LABEL: host_id}


def on_engine(
    api: docker.APIClient, host_id: str, arn: str | None = None
) -> list[dict[str, Any]]:
    """Every container of this test's host (and task) on the engine."""
    labels = [f"{HOST_LABEL}={host_id}"]
    if arn is not None:
        labels.append(f"{TASK_ARN_LABEL}={arn}")
    return list(api.containers(all=True, filters={"label": labels}))


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """BERTH_* for a subprocess berth on the test's database and host ID."""
    env = {
        "BERTH_STATE_DIR": str(settings.state_dir),
        "BERTH_DATABASE_URL": settings.resolved_database_url,
        "BERTH_DOCKER_HOST": settings.docker_host,
        "BERTH_HOST_ID": settings.host_id,
        "BERTH_LOG_FORMAT": "json",
    }
    env.update(extra)
    return env


def log_path(settings: Settings, name: str = "berth.log") -> Path:
    return Path(settings.state_dir) / name


def eventually(check: Callable[[], T | None], timeout: float, every: float = 0.05) -> T:
    """The first truthy result of ``check`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s; last result {result!r}")
        time.sleep(every)
