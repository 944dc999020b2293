"""What a control plane registers: a task and its container definitions.

These models are the request schema of ``POST /v1/tasks`` and the form in
which a task's spec is stored. Everything that can be checked without the
engine is checked here, so that a task that cannot work is never stored.
"""

from __future__ import annotations

import ipaddress
import math
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


def _addressable(value: str) -> str:
    # A container name is a path segment of the API and the target of a
    # "name:alias" link: a slash, a colon or a dot segment would make it
    # impossible to address.
    if "/" in value or ":" in value or value in (".", ".."):
        raise ValueError("must not contain '/' or ':', nor be '.' or '..'")
    return value


def _no_colon(value: str) -> str:
    # Docker's bind syntax is "source:target:mode"; a colon in either path
    # would be read as a separator.
    if ":" in value:
        raise ValueError("must not contain ':'")
    return value


def _no_nul(value: str) -> str:
    # A NUL cannot pass through execve; newlines and the rest are fine.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _env_entry(entry: object) -> bool:
    if not isinstance(entry, str) or "\x00" in entry:
        return False
    name, _, _ = entry.partition("=")
    return bool(name)


def _env_list(value: object) -> bool:
    return value is None or (isinstance(value, list) and all(map(_env_entry, value)))


def _ip_or_empty(value: str) -> str:
    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IPv4 or IPv6 address, or empty") from None
    return value


# Patterns that tell the OpenAPI document what the validators here enforce
# (with clearer messages than a pattern mismatch would give).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
ABSOLUTE = r"^/[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"


def _documented(pattern: str) -> Any:
    return Field(json_schema_extra={"pattern": pattern})


Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_no_control_characters),
    _documented(PRINTABLE),
]
Arn = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1600),
    AfterValidator(_no_control_characters),
    _documented(PRINTABLE),
]
AbsolutePath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4096, pattern=r"^/"),
    AfterValidator(_no_control_characters),
    _documented(ABSOLUTE),
]
MountPath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4096, pattern=r"^/"),
    AfterValidator(_no_control_characters),
    AfterValidator(_no_colon),
    _documented(r"^/[^:\x00-\x1f\x7f]*$"),
]
ContainerName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_no_control_characters),
    AfterValidator(_addressable),
    _documented(r"^[^/:\x00-\x1f\x7f]+$"),
]
ApiVersion = Annotated[str, StringConstraints(pattern=r"^1\.[0-9]{1,3}$")]
EnvName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=r"^[^=\x00-\x1f\x7f]+$"),
]
Arg = Annotated[
    str,
    StringConstraints(max_length=65536),
    AfterValidator(_no_nul),
    _documented(NO_NUL),
]
HostIp = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_ip_or_empty),
    Field(
        json_schema_extra={
            "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}, {"maxLength": 0}]
        }
    ),
]
Protocol = Literal["tcp", "udp", "sctp"]
NetworkMode = Literal["bridge", "host", "none"]
PullPolicy = Literal["always", "if-missing", "never"]
# The resource limits the engine knows by name.
UlimitName = Literal[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
]

MIN_MEMORY_MIB = 6  # the engine refuses a memory limit under 6 MiB
MAX_MEMORY_MIB = 16 * 1024 * 1024
MIN_CPU_SHARES = 2
MAX_CPU_SHARES = 262_144


class Strict(BaseModel):
    # No coercion: 0 is not false and 1.0 is not 1, so that what a client
    # sends is exactly what the document describes. Inputs are left out of
    # error messages: they may hold secrets (environment values), and
    # messages end up in answers and logs.
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)


class PortMapping(Strict):
    container_port: int = Field(ge=1, le=65535)
    host_port: int = Field(default=0, ge=0, le=65535)
    protocol: Protocol = "tcp"
    host_ip: HostIp = ""


class VolumeFrom(Strict):
    source_container: Text
    read_only: bool = False


class MountPoint(Strict):
    source_volume: Text
    container_path: MountPath
    read_only: bool = False


class Ulimit(Strict):
    name: UlimitName
    soft_limit: int = Field(ge=-1, le=2**63 - 1)
    hard_limit: int = Field(ge=-1, le=2**63 - 1)

    @model_validator(mode="after")
    def _soft_within_hard(self) -> Ulimit:
        # -1 is "unlimited" and exceeds any number.
        if self.hard_limit != -1 and not -1 < self.soft_limit <= self.hard_limit:
            raise ValueError(f"ulimit {self.name!r}: soft limit exceeds hard limit")
        return self


class LogConfiguration(Strict):
    log_driver: Text
    options: dict[Text, str] = Field(default_factory=dict)


# Deeper than any Engine API object nests (about six levels); deeper still
# would only exhaust the stack of whatever walks it.
MAX_DOCKER_CONFIG_DEPTH = 32


def _too_deep(value: Any, depth: int = 0) -> bool:
    if depth > MAX_DOCKER_CONFIG_DEPTH:
        return True
    inner = value.values() if isinstance(value, dict) else value
    if not isinstance(value, dict | list):
        return False
    return any(_too_deep(v, depth + 1) for v in inner)


def _unreadable(value: Any) -> str | None:
    """What in ``value`` the engine could read otherwise than berth does.

    A key that is not ASCII: newer engines fold some letters (a dotless i
    as I) that Python's case folding does not, so such a key could name a
    field the policy never saw. A number that is not finite: JSON has none,
    and it would reach the engine as something else.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "a number that is not finite"
    if isinstance(value, list):
        return next((w for w in map(_unreadable, value) if w), None)
    if not isinstance(value, dict):
        return None
    for key, inner in value.items():
        if not str(key).isascii():
            return "a key that is not ASCII"
        found = _unreadable(inner)
        if found:
            return found
    return None


def _repeated_key(value: Any) -> str | None:
    """A key some object in ``value`` writes twice in different letter case.

    The engine reads keys in any case and keeps the last of two spellings,
    so such a body means whatever the reader decides; no client needs one.
    """
    if isinstance(value, list):
        return next((k for k in map(_repeated_key, value) if k), None)
    if not isinstance(value, dict):
        return None
    seen: set[str] = set()
    for key, inner in value.items():
        folded = str(key).casefold()
        if folded in seen:
            return str(key)
        seen.add(folded)
        repeated = _repeated_key(inner)
        if repeated:
            return repeated
    return None


class DockerConfig(Strict):
    """Engine API fields merged over what berth builds (the escape hatch)."""

    config: dict[str, Any] | None = None
    host_config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_spelling_per_key(self) -> DockerConfig:
        for part in (self.config, self.host_config):
            if _too_deep(part):
                raise ValueError(
                    f"docker_config nests deeper than {MAX_DOCKER_CONFIG_DEPTH} levels"
                )
            unreadable = _unreadable(part)
            if unreadable:
                raise ValueError(f"docker_config holds {unreadable}")
            if _repeated_key(part) is not None:
                raise ValueError(
                    "docker_config writes one key twice in different letter "
                    "case; write each key once"
                )
        return self

    @model_validator(mode="after")
    def _env_entries(self) -> DockerConfig:
        # The engine repeats a malformed entry whole in its error, and an
        # entry is a secret's usual home: refuse it here, without echoing.
        for key, value in (self.config or {}).items():
            if key.casefold() == "env" and not _env_list(value):
                raise ValueError(
                    "config.Env must be a list of NAME=value strings with "
                    "no NUL characters"
                )
        return self


class TaskVolume(Strict):
    """A volume of the task: a host path, or a Docker volume when none."""

    name: Text
    host_path: MountPath | None = None


def _link_target(link: str) -> str:
    return link.split(":", 1)[0]


Link = Annotated[
    str,
    StringConstraints(min_length=1, max_length=511, pattern=r"^[^:]+(:[^:]+)?$"),
    AfterValidator(_no_control_characters),
    _documented(r"^[^:\x00-\x1f\x7f]+(:[^:\x00-\x1f\x7f]+)?$"),
]


class ContainerSpec(Strict):
    name: ContainerName
    image: Annotated[
        str,
        StringConstraints(min_length=1, max_length=1024, pattern=r"^\S+$"),
    ]
    command: list[Arg] | None = None
    entrypoint: list[Arg] | None = None
    environment: dict[EnvName, Arg] = Field(default_factory=dict)
    working_dir: AbsolutePath | None = None
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

    @model_validator(mode="after")
    def _reservation_within_limit(self) -> ContainerSpec:
        limit, reservation = self.memory_mib, self.memory_reservation_mib
        if limit is not None and reservation is not None and reservation > limit:
            raise ValueError(
                f"container {self.name!r}: memory_reservation_mib exceeds memory_mib"
            )
        return self

    def dependencies(self) -> list[str]:
        """The siblings this container needs created first, in order."""
        names = [_link_target(link) for link in self.links]
        names += [v.source_container for v in self.volumes_from]
        return list(dict.fromkeys(names))


class TaskSpec(Strict):
    arn: Arn
    family: Text
    version: Text | Annotated[int, Field(ge=0, le=2**53)]
    cluster: Text | None = None
    network_mode: NetworkMode = "bridge"
    volumes: list[TaskVolume] = Field(default_factory=list)
    containers: list[ContainerSpec] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _check_references(self) -> TaskSpec:
        self.version = str(self.version)

        names = [c.name for c in self.containers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"container names must be unique: {duplicates}")

        volume_names = [v.name for v in self.volumes]
        if len(set(volume_names)) != len(volume_names):
            raise ValueError("volume names must be unique")

        for container in self.containers:
            _check_container_refs(container, set(names), set(volume_names))
        _check_host_ports(self.containers)

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


# A host IP that listens on every address clashes with any other IP.
_EVERY_ADDRESS = {"", "0.0.0.0", "::"}  # noqa: S104 (compared, never bound)


def _ips_clash(first: str, second: str) -> bool:
    return first == second or first in _EVERY_ADDRESS or second in _EVERY_ADDRESS


def _check_host_ports(containers: list[ContainerSpec]) -> None:
    """Refuse two mappings of one task onto the same host port.

    The engine would take the first and refuse to start the second, long
    after the task was accepted; a fixed host port is the task's to claim
    once. Port 0 asks the engine for a free port, which never clashes.
    """
    taken: list[tuple[int, str, str, str]] = []
    for container in containers:
        for mapping in container.port_mappings:
            if mapping.host_port == 0:
                continue
            for port, protocol, ip, owner in taken:
                if (
                    port == mapping.host_port
                    and protocol == mapping.protocol
                    and _ips_clash(ip, mapping.host_ip)
                ):
                    raise ValueError(
                        f"containers {owner!r} and {container.name!r} both map "
                        f"host port {port}/{protocol}"
                    )
            taken.append(
                (mapping.host_port, mapping.protocol, mapping.host_ip, container.name)
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
