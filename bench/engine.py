"""The direct side: what a caller of the engine pays for the same answer.

Each direct container gets the very body berth would send for the same
spec (built by berth's own pure function), with the ownership labels under
a prefix of the benchmark's own, so that berth's event watcher and
reconcile, which look for berth's labels, never see them.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import docker

from app.service.labels import ownership_labels
from app.service.request import build_create_body
from app.service.spec import TaskSpec

DIRECT_LABEL_PREFIX = "io.berth.bench-direct."

# The engine's socket; pool large enough for the widest concurrency level,
# so the direct side never queues in urllib3.
POOL_SIZE = 32

# As berth's default: a call that takes longer than this has hung.
DOCKER_TIMEOUT_S = 30


class Direct:
    """docker-py on the same engine, creating what berth would create."""

    def __init__(self, base_url: str, spec: dict[str, Any]) -> None:
        self.api = docker.APIClient(
            base_url=base_url,
            version="auto",
            timeout=DOCKER_TIMEOUT_S,
            max_pool_size=POOL_SIZE,
        )
        self.spec = TaskSpec.model_validate(spec)
        self.made: list[str] = []

    def body(self, arn: str) -> dict[str, Any]:
        container = self.spec.containers[0]
        labels = ownership_labels(
            DIRECT_LABEL_PREFIX,
            task_arn=arn,
            container_name=container.name,
            family=self.spec.family,
            version=str(self.spec.version),
            cluster="default",
            host_id="bench-direct",
        )
        return build_create_body(self.spec, "direct", container, {}, labels)

    def create_and_inspect(self, arn: str) -> tuple[float, float]:
        """Create then inspect; seconds for the create, and for both."""
        body = self.body(arn)
        name = f"bench-direct-{secrets.token_hex(10)}"

        started = time.perf_counter()
        docker_id = self.api.create_container_from_config(body, name)["Id"]
        created = time.perf_counter()
        self.api.inspect_container(docker_id)
        done = time.perf_counter()

        self.made.append(docker_id)
        return created - started, done - started

    def remove_all(self) -> None:
        for docker_id in self.made:
            self.api.remove_container(docker_id, force=True)
        self.made.clear()

    def list_labelled(self, label: str) -> int:
        return len(self.api.containers(all=True, filters={"label": label}))

    def version(self) -> dict[str, Any]:
        return dict(self.api.version())

    def info(self) -> dict[str, Any]:
        return dict(self.api.info())
