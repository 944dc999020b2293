"""Docker's inspect document turned into berth's container metadata.

Everything here is a pure function of the document: nothing calls Docker, so
the conversion is tested on inspect JSON captured from a real engine. Every
key of the document may be missing, null or of the wrong type, and none of
that may raise: a container whose ports we cannot read still has a Docker ID
that the rest of berth needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

# Error names inside metadata; clients switch on them, so they never change.
OUT_OF_MEMORY_ERROR = "OutOfMemoryError"
DOCKER_STATE_ERROR = "DockerStateError"
PORT_BINDING_PARSE_ERROR = "PortBindingParseError"

PROTOCOLS = frozenset({"tcp", "udp", "sctp"})
MAX_PORT = 65535

# Go's time.Time zero value, which Docker writes for "never happened".
DOCKER_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)

# RFC 3339 as Go writes it: up to nine fractional digits, trailing zeros
# trimmed (so the digit count varies), "Z" or a numeric offset. ASCII only,
# because \d would also accept digits of other scripts.
_RFC3339 = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class PortBinding(BaseModel):
    """One published port: a container port reachable on a host IP and port."""

    container_port: int
    host_port: int
    protocol: str
    host_ip: str


class VolumeMount(BaseModel):
    """One entry of the container's ``Mounts``."""

    source: str | None = None
    destination: str
    type: str | None = None
    name: str | None = None
    read_only: bool = False


class MetadataError(BaseModel):
    """Why a container failed, or why its metadata is incomplete."""

    name: str
    message: str


class ContainerMetadata(BaseModel):
    """What berth reports about a Docker container."""

    docker_id: str | None = None
    docker_name: str | None = None
    docker_status: str | None = None
    running: bool = False
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


def convert_inspect(doc: Mapping[str, Any]) -> ContainerMetadata:
    """Convert an inspect document; tolerates any missing or malformed key."""
    doc = _mapping(doc)
    state = _mapping(doc.get("State"))
    network = _mapping(doc.get("NetworkSettings"))
    config = _mapping(doc.get("Config"))

    running = state.get("Running") is True
    finished_at = parse_docker_time(state.get("FinishedAt"))
    # A container that never finished has no exit code, whatever
    # State.ExitCode says (Docker leaves 127 there after a failed start).
    stopped = not running and finished_at is not None
    oom_killed = state.get("OOMKilled") is True
    port_bindings, port_error = parse_port_bindings(network.get("Ports"))

    return ContainerMetadata(
        docker_id=_text(doc.get("Id")),
        docker_name=_docker_name(doc.get("Name")),
        docker_status=_text(state.get("Status")),
        running=running,
        exit_code=_exit_code(state) if stopped else None,
        oom_killed=oom_killed,
        error=_state_error(state, stopped, oom_killed) or port_error,
        port_bindings=port_bindings,
        volumes=parse_mounts(doc.get("Mounts")),
        labels=_labels(config.get("Labels")),
        health=_text(_mapping(state.get("Health")).get("Status")),
        created_at=parse_docker_time(doc.get("Created")),
        started_at=parse_docker_time(state.get("StartedAt")),
        finished_at=finished_at,
    )


def merge_previous(
    new: ContainerMetadata, previous: ContainerMetadata | None
) -> ContainerMetadata:
    """Keep the last port bindings seen once Docker has cleared them."""
    # Docker empties NetworkSettings.Ports when a container stops, yet a
    # client asking where a stopped task was listening still needs it.
    if previous is None or new.running or new.port_bindings:
        return new

    return new.model_copy(update={"port_bindings": list(previous.port_bindings)})


def parse_port_bindings(
    ports: Any,
) -> tuple[list[PortBinding], MetadataError | None]:
    """Read ``NetworkSettings.Ports``, keeping what parses and naming the rest."""
    if ports is None:
        return [], None
    if not isinstance(ports, Mapping):
        return [], _port_error([f"Ports is {type(ports).__name__}, not an object"])

    bindings: list[PortBinding] = []
    problems: list[str] = []
    for key, hosts in ports.items():
        problem = _collect_key(key, hosts, bindings)
        if problem is not None:
            problems.append(problem)

    bindings.sort(key=_binding_order)
    return bindings, _port_error(problems) if problems else None


def parse_mounts(mounts: Any) -> list[VolumeMount]:
    """Read ``Mounts``, sorted by destination."""
    if not isinstance(mounts, list):
        return []

    volumes = [_volume(m) for m in mounts if isinstance(m, Mapping)]
    # Docker lists mounts in Go map order, which changes between inspects.
    found = [v for v in volumes if v is not None]
    return sorted(found, key=lambda v: (v.destination, v.source or ""))


def parse_docker_time(value: Any) -> datetime | None:
    """Parse Docker's RFC 3339 time to aware UTC; zero time and junk are None."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return None

    # Python keeps microseconds; Docker writes up to nanoseconds.
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    offset = match["offset"].replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(f"{match['base']}.{fraction}{offset}")
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        # A calendar-invalid date, or an offset that leaves year 1.
        return None

    return None if parsed == DOCKER_ZERO_TIME else parsed


# One host binding: parsed, None when not published, or text naming junk.
_HostBinding = PortBinding | str | None


def _collect_key(key: Any, hosts: Any, out: list[PortBinding]) -> str | None:
    """Append the bindings of one ``Ports`` key; describe it if it is bad."""
    parsed = _parse_port_key(key)
    if parsed is None:
        return f"bad port key {key!r}"
    # Null means exposed but not published: nothing to report, not an error.
    if hosts is None:
        return None
    if not isinstance(hosts, list):
        return f"bindings of {key!r} are not a list"

    container_port, protocol = parsed
    bad_host_ports = []
    for host in hosts:
        binding = _binding(container_port, protocol, host)
        if isinstance(binding, PortBinding):
            out.append(binding)
        elif binding is not None:
            bad_host_ports.append(binding)

    if bad_host_ports:
        return f"bad HostPort in {key!r}: {', '.join(bad_host_ports)}"
    return None


def _parse_port_key(key: Any) -> tuple[int, str] | None:
    """Split ``"80/tcp"`` into ``(80, "tcp")``; a bare port is tcp."""
    if not isinstance(key, str):
        return None
    port_text, _, protocol = key.partition("/")
    protocol = protocol.lower() or "tcp"
    port = _port_number(port_text)
    if port is None or protocol not in PROTOCOLS:
        return None

    return port, protocol


def _binding(container_port: int, protocol: str, host: Any) -> _HostBinding:
    """One host binding, None when unpublished, or a description of junk."""
    if not isinstance(host, Mapping):
        return repr(host)
    host_port_value = host.get("HostPort")
    # Before start, or for a port Docker has not yet assigned, HostPort is
    # empty: the port is not published (yet), which is not an error.
    if host_port_value is None or host_port_value == "":
        return None
    host_port = _port_number(host_port_value)
    if host_port is None:
        return repr(host_port_value)

    host_ip = host.get("HostIp")
    return PortBinding(
        container_port=container_port,
        host_port=host_port,
        protocol=protocol,
        host_ip=host_ip if isinstance(host_ip, str) else "",
    )


def _port_number(value: Any) -> int | None:
    """A TCP/UDP port from Docker's text (or an int); None if out of range."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_PORT:
        return value

    return None


def _binding_order(binding: PortBinding) -> tuple[int, str, str, int]:
    return (
        binding.container_port,
        binding.protocol,
        binding.host_ip,
        binding.host_port,
    )


def _port_error(problems: list[str]) -> MetadataError:
    return MetadataError(
        name=PORT_BINDING_PARSE_ERROR,
        message="cannot parse port bindings: " + "; ".join(problems),
    )


def _volume(mount: Mapping[str, Any]) -> VolumeMount | None:
    """One mount, or None when it names no destination."""
    destination = _text(mount.get("Destination"))
    if destination is None:
        return None

    rw = mount.get("RW")
    return VolumeMount(
        source=_text(mount.get("Source")),
        destination=destination,
        type=_text(mount.get("Type")),
        name=_text(mount.get("Name")),
        # A mount is read-write unless Docker says otherwise.
        read_only=rw is False,
    )


def _state_error(
    state: Mapping[str, Any], stopped: bool, oom_killed: bool
) -> MetadataError | None:
    """The container's own failure; a running container's OOM kill is not one."""
    # A child process killed by the OOM killer leaves PID 1 running, and a
    # running container has not failed, so only a stopped one counts.
    if stopped and oom_killed:
        return MetadataError(
            name=OUT_OF_MEMORY_ERROR,
            message="the container was killed for running out of memory",
        )
    docker_error = _text(state.get("Error"))
    if docker_error is not None:
        return MetadataError(name=DOCKER_STATE_ERROR, message=docker_error)

    return None


def _exit_code(state: Mapping[str, Any]) -> int | None:
    code = state.get("ExitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _docker_name(value: Any) -> str | None:
    # Docker names carry a leading "/" from the days of container links.
    name = _text(value)
    return _text(name.removeprefix("/")) if name is not None else None


def _labels(value: Any) -> dict[str, str]:
    labels = _mapping(value)
    return {
        key: text
        for key, text in labels.items()
        if isinstance(key, str) and isinstance(text, str)
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    """A non-empty string, else None: Go writes "" for "absent"."""
    return value if isinstance(value, str) and value else None
