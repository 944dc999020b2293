"""What a control plane registers: a task and its container definitions.

These models are the request schema of ``POST /v1/tasks`` and the form in
which a task's spec is stored. Everything that can be checked without the
engine is checked here, so that a task that cannot work is never stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_no_control_characters),
]
LongText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4096),
    AfterValidator(_no_control_characters),
]
Arn = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1600),
    AfterValidator(_no_control_characters),
]
ApiVersion = Annotated[str, StringConstraints(pattern=r"^1\.[0-9]{1,3}$")]
Protocol = Literal["tcp", "udp", "sctp"]
NetworkMode = Literal["bridge", "host", "none"]
PullPolicy = Literal["always", "if-missing", "never"]

MIN_MEMORY_MIB = 6  # the engine refuses a memory limit under 6 MiB
MAX_MEMORY_MIB = 16 * 1024 * 1024
MIN_CPU_SHARES = 2
MAX_CPU_SHARES = 262_144


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PortMapping(Strict):
    container_port: int = Field(ge=1, le=65535)
    host_port: int = Field(default=0, ge=0, le=65535)
    protocol: Protocol = "tcp"
    host_ip: Annotated[str, StringConstraints(max_length=64)] = ""


class VolumeFrom(Strict):
    source_container: Text
    read_only: bool = False


class MountPoint(Strict):
    source_volume: Text
    container_path: Annotated[
        str,
        StringConstraints(min_length=1, max_length=4096, pattern=r"^/"),
        AfterValidator(_no_control_characters),
    ]
    read_only: bool = False


class Ulimit(Strict):
    name: Text
    soft_limit: int = Field(ge=-1)
    hard_limit: int = Field(ge=-1)


class LogConfiguration(Strict):
    log_driver: Text
    options: dict[Text, str] = Field(default_factory=dict)


class DockerConfig(Strict):
    """Engine API fields merged over what berth builds (the escape hatch)."""

    config: dict[str, Any] | None = None
    host_config: dict[str, Any] | None = None


class TaskVolume(Strict):
    """A volume of the task: a host path, or a Docker volume when none."""

    name: Text
    host_path: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=4096, pattern=r"^/"),
            AfterValidator(_no_control_characters),
        ]
        | None
    ) = None


def _link_target(link: str) -> str:
    return link.split(":", 1)[0]


Link = Annotated[
    str,
    StringConstraints(min_length=1, max_length=511, pattern=r"^[^:]+(:[^:]+)?$"),
    AfterValidator(_no_control_characters),
]


class ContainerSpec(Strict):
    name: Text
    image: Annotated[
        str,
        StringConstraints(min_length=1, max_length=1024, pattern=r"^\S+$"),
    ]
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[Annotated[str, StringConstraints(min_length=1)], str] = Field(
        default_factory=dict
    )
    working_dir: LongText | None = None
    user: Text | None = None
    hostname: Text | None = None
    memory_mib: int | None = Field(default=None, ge=MIN_MEMORY_MIB, le=MAX_MEMORY_MIB)
    memory_reservation_mib: int | None = Field(
        default=None, ge=MIN_MEMORY_MIB, le=MAX_MEMORY_MIB
    )
    cpu_shares: int | None = Field(default=None, ge=MIN_CPU_SHARES, le=MAX_CPU_SHARES)
    port_mappings: list[PortMapping] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    volumes_from: list[VolumeFrom] = Field(default_factory=list)
    mount_points: list[MountPoint] = Field(default_factory=list)
    docker_labels: dict[Text, str] = Field(default_factory=dict)
    docker_api_version: ApiVersion | None = None
    privileged: bool = False
    readonly_root_filesystem: bool = False
    ulimits: list[Ulimit] = Field(default_factory=list)
    log_configuration: LogConfiguration | None = None
    essential: bool = True
    pull_policy: PullPolicy = "if-missing"
    docker_config: DockerConfig | None = None

    def dependencies(self) -> list[str]:
        """The siblings this container needs created first, in order."""
        names = [_link_target(link) for link in self.links]
        names += [v.source_container for v in self.volumes_from]
        return list(dict.fromkeys(names))


class TaskSpec(Strict):
    arn: Arn
    family: Text
    version: Annotated[str, StringConstraints(min_length=1, max_length=255)] | int
    cluster: Text | None = None
    network_mode: NetworkMode = "bridge"
    volumes: list[TaskVolume] = Field(default_factory=list)
    containers: list[ContainerSpec] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _check_references(self) -> TaskSpec:
        self.version = str(self.version)
        _no_control_characters(self.version)

        names = [c.name for c in self.containers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"container names must be unique: {duplicates}")

        volume_names = [v.name for v in self.volumes]
        if len(set(volume_names)) != len(volume_names):
            raise ValueError("volume names must be unique")

        for container in self.containers:
            _check_container_refs(container, set(names), set(volume_names))

        dependency_order(self)
        return self

    def container(self, name: str) -> ContainerSpec | None:
        return next((c for c in self.containers if c.name == name), None)


def _check_container_refs(
    container: ContainerSpec, names: set[str], volumes: set[str]
) -> None:
    for target in container.dependencies():
        if target == container.name:
            raise ValueError(f"container {container.name!r} refers to itself")
        if target not in names:
            raise ValueError(
                f"container {container.name!r} refers to unknown container {target!r}"
            )
    for mount in container.mount_points:
        if mount.source_volume not in volumes:
            raise ValueError(
                f"container {container.name!r} mounts undeclared volume "
                f"{mount.source_volume!r}"
            )


def dependency_order(task: TaskSpec) -> list[str]:
    """Container names with every dependency before its dependents.

    Raises ValueError on a cycle of links or volumes-from.
    """
    deps = {c.name: c.dependencies() for c in task.containers}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise ValueError(f"dependency cycle: {cycle}")
        state[name] = 1
        for dep in deps.get(name, []):
            visit(dep, [*path, name])
        state[name] = 2
        order.append(name)

    for container in task.containers:
        visit(container.name, [])
    return order
