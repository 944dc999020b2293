"""What a container may ask of the host, judged on the final create body.

Judging the merged Engine API body, not the typed fields, is what stops a
``docker_config`` from smuggling in what the typed fields are refused.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import PolicyDeniedError

# Both spellings: /var/run is a link to /run on current systems.
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")

HOST_NAMESPACE_MODES = ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode")


@dataclass(frozen=True)
class Policy:
    allow_privileged: bool = False
    allow_host_network: bool = False
    allow_host_pid: bool = False
    allow_cap_add: bool = False
    allowed_host_paths: tuple[str, ...] = ()


def _norm(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _exposes_socket(path: str) -> bool:
    return any(_under(sock, path) for sock in DOCKER_SOCKETS)


def check_host_path(policy: Policy, path: str) -> None:
    """Refuse a host path outside the allow-list, and the engine's socket
    (or a folder holding it) unless the socket itself is listed."""
    path = _norm(path)
    allowed = [_norm(p) for p in policy.allowed_host_paths]

    if _exposes_socket(path):
        sockets = [s for s in DOCKER_SOCKETS if _under(s, path)]
        if not any(s in allowed for s in sockets):
            raise PolicyDeniedError(
                f"host path {path} exposes the Docker socket, which must be "
                "named explicitly in BERTH_ALLOWED_HOST_PATHS (rule: docker-socket)"
            )
        return

    if not any(_under(path, root) for root in allowed):
        raise PolicyDeniedError(
            f"host path {path} is outside BERTH_ALLOWED_HOST_PATHS (rule: host-path)"
        )


def _bind_sources(host: Mapping[str, Any]) -> Iterable[str]:
    for bind in host.get("Binds") or []:
        source = str(bind).split(":", 1)[0]
        if source.startswith("/"):
            yield source
    for mount in host.get("Mounts") or []:
        if not isinstance(mount, Mapping):
            continue
        source = str(mount.get("Source") or "")
        if str(mount.get("Type", "volume")).lower() == "bind":
            yield source or "/"
            continue
        # A local volume with a device option is a bind mount in disguise.
        options = ((mount.get("VolumeOptions") or {}).get("DriverConfig") or {}).get(
            "Options"
        ) or {}
        if isinstance(options, Mapping) and options.get("device"):
            yield str(options["device"])


def _deny(rule: str, what: str) -> PolicyDeniedError:
    return PolicyDeniedError(f"{what} is not allowed on this host (rule: {rule})")


def check_create_body(policy: Policy, body: Mapping[str, Any]) -> None:
    """Raise PolicyDeniedError naming the first rule the body breaks."""
    host = body.get("HostConfig") or {}
    if not isinstance(host, Mapping):
        return

    if host.get("Privileged") and not policy.allow_privileged:
        raise _deny("privileged", "a privileged container")
    if host.get("Devices") and not policy.allow_privileged:
        raise _deny("privileged", "access to host devices")
    if not policy.allow_privileged and any(
        "unconfined" in str(opt) for opt in host.get("SecurityOpt") or []
    ):
        raise _deny("privileged", "an unconfined security profile")

    if str(host.get("NetworkMode", "")).lower() == "host" and not (
        policy.allow_host_network
    ):
        raise _deny("host-network", "the host's network namespace")
    for field in HOST_NAMESPACE_MODES:
        if str(host.get(field, "")).lower() == "host" and not policy.allow_host_pid:
            raise _deny("host-pid", f"the host's namespace ({field})")

    if host.get("CapAdd") and not policy.allow_cap_add:
        raise _deny("cap-add", "adding capabilities")

    for source in _bind_sources(host):
        check_host_path(policy, source)
