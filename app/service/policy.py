"""What a container may ask of the host, judged on the final create body.

Judging the merged Engine API body, not the typed fields, is what stops a
``docker_config`` from smuggling in what the typed fields are refused. Two
habits of the engine widen what "the body" means, and both are covered:

- it decodes JSON field names case-insensitively (Go's ``encoding/json``),
  so ``privileged`` or ``hostconfig`` count as ``Privileged`` and
  ``HostConfig``;
- it still reads host-config fields at the top level of the body (the
  deprecated embedded form), used when ``HostConfig`` is absent or null.

The body may name other containers only where berth itself wired this
task's siblings from the typed ``links`` and ``volumes_from``: taking the
volumes of, or sharing a namespace with, any other container hands over
whatever that container was allowed, a bind of the Docker socket included.
"""

from __future__ import annotations

import os
import posixpath
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import PolicyDeniedError
from app.service.request import CreateBody, Wiring, build_create_body
from app.service.spec import ContainerSpec, TaskSpec

# Both spellings: /var/run is a link to /run on current systems. containerd's
# socket hands over the host just as well as Docker's.
ENGINE_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
)

HOST_NAMESPACE_MODES = ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode")
# Every mode the engine reads "container:<name>" in, joining that container's
# namespace (or, for Cgroup, its cgroup). Its PID namespace shows its
# filesystem at /proc/1/root. berth never wires one (the typed network_mode
# is bridge, host or none), so no setting allows them, for siblings neither.
CONTAINER_MODES = ("NetworkMode", *HOST_NAMESPACE_MODES, "Cgroup")
JOIN_PREFIX = "container:"

# Fields that reach host devices or lift the confinement a container
# normally has; each is as good as ``Privileged`` to an attacker.
DEVICE_FIELDS = ("Devices", "DeviceCgroupRules", "DeviceRequests")
# These replace the engine's defaults, so setting them can unmask /proc.
PROC_MASK_FIELDS = ("MaskedPaths", "ReadonlyPaths")
# The one security option that only tightens: every other replaces the
# engine's seccomp, AppArmor or SELinux confinement with the caller's own
# (an inline seccomp profile that allows every call, an SELinux type such
# as spc_t), which is as good as unconfined.
TIGHTENING_OPTIONS = (
    "no-new-privileges",
    "no-new-privileges:true",
    "no-new-privileges=true",
)

# Each rule and what allows what it denies: the setting an operator changes,
# or, for references to other containers, only what berth wires itself.
RULES = {
    "privileged": "BERTH_ALLOW_PRIVILEGED",
    "cgroup-parent": "BERTH_ALLOW_PRIVILEGED",
    "host-network": "BERTH_ALLOW_HOST_NETWORK",
    "host-pid": "BERTH_ALLOW_HOST_PID",
    "cap-add": "BERTH_ALLOW_CAP_ADD",
    "host-path": "BERTH_ALLOWED_HOST_PATHS",
    "docker-socket": "BERTH_ALLOWED_HOST_PATHS, naming the socket itself",
    "volumes-from": "the typed volumes_from field, naming a sibling",
    "links": "the typed links field, naming a sibling",
    "container-namespace": "no setting",
    "named-volume": "the typed mount_points field, naming a task volume",
    "network": "the task's network_mode (bridge, host or none)",
    "log-driver": "BERTH_ALLOWED_LOG_DRIVERS",
    "restart-policy": "no setting: berth starts and restarts containers itself",
}

# The networks a task's typed network_mode names ("default" is bridge);
# any other is a network someone made for other containers to share.
TASK_NETWORKS = ("bridge", "default", "none", "host")


@dataclass(frozen=True)
class Policy:
    allow_privileged: bool = False
    allow_host_network: bool = False
    allow_host_pid: bool = False
    allow_cap_add: bool = False
    allowed_host_paths: tuple[str, ...] = ()
    allowed_log_drivers: tuple[str, ...] = ("json-file", "local", "journald", "none")
    # The socket berth itself talks to, when it is not at a usual place.
    extra_sockets: tuple[str, ...] = ()

    @property
    def sockets(self) -> tuple[str, ...]:
        return ENGINE_SOCKETS + tuple(_norm(s) for s in self.extra_sockets)


def deny(rule: str, what: str) -> PolicyDeniedError:
    return PolicyDeniedError(
        f"{what} is not allowed on this host (rule: {rule}; allowed by {RULES[rule]})",
        rule=rule,
    )


# Host paths


def _norm(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


def _forms(path: str) -> set[str]:
    """The path as written and as the host resolves its links.

    Resolving is best effort: where berth's own filesystem is the host's,
    a link inside an allowed folder cannot lead out of it unnoticed.
    """
    lexical = _norm(path)
    return {lexical, _norm(os.path.realpath(lexical))}


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _socket_aliases(socket: str) -> set[str]:
    # /var/run/x and /run/x name one file; naming either allows both.
    aliases = {socket}
    for old, new in (("/var/run/", "/run/"), ("/run/", "/var/run/")):
        if socket.startswith(old):
            aliases.add(new + socket[len(old) :])
    return aliases


def _allowed_forms(policy: Policy) -> set[str]:
    allowed: set[str] = set()
    for root in policy.allowed_host_paths:
        for form in _forms(root):
            allowed.add(form)
            if form in policy.sockets:
                allowed |= _socket_aliases(form)
    return allowed


def _check_form(policy: Policy, path: str, allowed: set[str]) -> None:
    exposed = [s for s in policy.sockets if _under(s, path)]
    unnamed = [s for s in exposed if not _socket_aliases(s) & allowed]
    if unnamed and unnamed[0] == path:
        raise deny("docker-socket", f"the engine socket {path}")
    if unnamed:
        raise deny("docker-socket", f"host path {path}, which holds {unnamed[0]},")
    if not any(_under(path, root) for root in allowed):
        raise deny("host-path", f"host path {path}")


def check_host_path(policy: Policy, path: str) -> None:
    """Refuse a host path outside the allow-list, and an engine's socket
    (or a folder holding one) unless the socket itself is listed."""
    allowed = _allowed_forms(policy)
    for form in sorted(_forms(path)):
        _check_form(policy, form, allowed)


# Reading the body as the engine does


def _values(obj: Mapping[str, Any], field: str) -> Iterator[Any]:
    """Every value of ``field``, in whatever letter case it was written."""
    wanted = field.casefold()
    for key, value in obj.items():
        if isinstance(key, str) and key.casefold() == wanted:
            yield value


def _set(obj: Mapping[str, Any], field: str) -> bool:
    return any(bool(v) for v in _values(obj, field))


def _items(obj: Mapping[str, Any], field: str) -> Iterator[Any]:
    for value in _values(obj, field):
        if isinstance(value, list | tuple):
            yield from value


def _words(obj: Mapping[str, Any], field: str) -> Iterator[str]:
    for value in _values(obj, field):
        if value is not None:
            yield str(value).strip().lower()


def host_configs(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every object the engine may read host configuration from."""
    nested = [v for v in _values(body, "HostConfig") if isinstance(v, Mapping)]
    return [body, *nested]


def _mount_kinds(mount: Mapping[str, Any]) -> set[str]:
    """Every type a mount could be read as; "volume" when none is given.

    The engine matches keys in any letter case and keeps the last of a
    key written twice; the policy cannot know which one that is, so it
    judges the mount as each of them.
    """
    return set(_words(mount, "Type")) or {"volume"}


def _mount_sources(mount: Mapping[str, Any]) -> Iterator[str]:
    """The host paths a mount could bind, whichever of its keys counts."""
    if "bind" in _mount_kinds(mount):
        sources = [str(s or "/") for s in _values(mount, "Source")]
        yield from sources or ["/"]
    # A local volume with a device option is a bind mount in disguise.
    for volume_options in _values(mount, "VolumeOptions"):
        if not isinstance(volume_options, Mapping):
            continue
        for driver in _values(volume_options, "DriverConfig"):
            if not isinstance(driver, Mapping):
                continue
            for options in _values(driver, "Options"):
                if not isinstance(options, Mapping):
                    continue
                for device in _values(options, "device"):
                    if device:
                        yield str(device)


def bind_sources(host: Mapping[str, Any]) -> Iterable[str]:
    """The host paths a host config mounts into the container."""
    for bind in _items(host, "Binds"):
        source = str(bind).split(":", 1)[0]
        if source.startswith("/"):
            yield source
    for mount in _items(host, "Mounts"):
        if isinstance(mount, Mapping):
            yield from _mount_sources(mount)


def named_volume_sources(host: Mapping[str, Any]) -> Iterable[str]:
    """The named Docker volumes a host config mounts into the container.

    A ``Binds`` source that is no absolute path names a volume; a mount of
    type volume names one in ``Source`` (none is an anonymous volume).
    """
    for bind in _items(host, "Binds"):
        source = str(bind).split(":", 1)[0]
        if source and not source.startswith("/"):
            yield source
    for mount in _items(host, "Mounts"):
        if not isinstance(mount, Mapping) or "volume" not in _mount_kinds(mount):
            continue
        # A path is no volume's name: the host-path rule judges it.
        for named in _values(mount, "Source"):
            if named and not str(named).startswith("/"):
                yield str(named)


# The rules


def _driver_configs(host: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for mount in _items(host, "Mounts"):
        if not isinstance(mount, Mapping):
            continue
        for volume_options in _values(mount, "VolumeOptions"):
            if isinstance(volume_options, Mapping):
                yield from (
                    d
                    for d in _values(volume_options, "DriverConfig")
                    if isinstance(d, Mapping)
                )


def _chosen_volume_driver(host: Mapping[str, Any]) -> bool:
    """Whether a volume is made by a driver, or with options, of the caller's.

    The local driver's ``type`` and ``o`` mount what they name from the
    host's view: an overlay's lower layer is any host folder, an NFS mount
    reaches the host's network; a plugin driver does what it likes.
    """
    if any(w not in ("", "local") for w in _words(host, "VolumeDriver")):
        return True
    for driver in _driver_configs(host):
        if any(w not in ("", "local") for w in _words(driver, "Name")):
            return True
        for options in _values(driver, "Options"):
            if isinstance(options, Mapping) and not _plain_bind(options):
                return True
    return False


# A local volume of type "none" with these flags is a bind mount of its
# device, which the host-path rule judges like any other bind.
_BIND_FLAGS = {"bind", "rbind", "ro", "rw"}


def _plain_bind(options: Mapping[str, Any]) -> bool:
    """Whether local volume options ask for nothing but a bind of a device."""
    chosen = {str(k).casefold(): str(v).strip().lower() for k, v in options.items()}
    if "type" not in chosen and "o" not in chosen:
        return True
    flags = {f.strip() for f in chosen.get("o", "").split(",") if f.strip()}
    return chosen.get("type") == "none" and flags <= _BIND_FLAGS


def _below_zero(value: Any) -> bool:
    try:
        return float(value) < 0
    except (TypeError, ValueError):
        return False


def _check_privileges(policy: Policy, host: Mapping[str, Any]) -> None:
    if policy.allow_privileged:
        return
    if _set(host, "Privileged"):
        raise deny("privileged", "a privileged container")
    # A cgroup of the caller's choosing ("/" is the host's root cgroup)
    # escapes the limits the engine puts every container under.
    if _set(host, "CgroupParent"):
        raise deny("cgroup-parent", "choosing the parent cgroup (CgroupParent)")
    for field in DEVICE_FIELDS:
        if _set(host, field):
            raise deny("privileged", f"access to host devices ({field})")
    for field in PROC_MASK_FIELDS:
        if any(v is not None for v in _values(host, field)):
            raise deny("privileged", f"replacing the engine's {field}")
    for option in _items(host, "SecurityOpt"):
        if str(option).strip().lower() not in TIGHTENING_OPTIONS:
            raise deny("privileged", "a security profile of the caller's own")
    if _chosen_volume_driver(host):
        raise deny("privileged", "a volume driver or mount options of the caller's")
    # Below zero, the kernel's OOM killer takes the host's processes first.
    if any(_below_zero(v) for v in _values(host, "OomScoreAdj")):
        raise deny("privileged", "shielding the container from the OOM killer")


def _check_joined_namespaces(host: Mapping[str, Any]) -> None:
    for field in CONTAINER_MODES:
        # Lower case and stripped: stricter than the engine, never looser.
        if any(word.startswith(JOIN_PREFIX) for word in _words(host, field)):
            what = f"another container's namespace ({field})"
            raise deny("container-namespace", what)


def _check_network(host: Mapping[str, Any]) -> None:
    # Exactly as written: the engine's network names are case-sensitive,
    # so "Bridge" is some other network, not the default bridge.
    for mode in _values(host, "NetworkMode"):
        if mode in (None, "") or str(mode).lower().startswith(JOIN_PREFIX):
            continue
        if mode not in TASK_NETWORKS:
            raise deny("network", "a network other than bridge, host or none")


def _check_namespaces(policy: Policy, host: Mapping[str, Any]) -> None:
    _check_joined_namespaces(host)
    if "host" in _words(host, "NetworkMode") and not policy.allow_host_network:
        raise deny("host-network", "the host's network namespace")
    _check_network(host)
    for field in HOST_NAMESPACE_MODES:
        if "host" in _words(host, field) and not policy.allow_host_pid:
            raise deny("host-pid", f"the host's namespace ({field})")


def _check_restart_policy(host: Mapping[str, Any]) -> None:
    # The engine restarts such a container by itself, resolving its binds
    # anew each time, where berth's start-time judgement never sees it.
    for restart in _values(host, "RestartPolicy"):
        if not isinstance(restart, Mapping):
            if restart not in (None, ""):
                raise deny("restart-policy", "a restart policy")
            continue
        if any(w not in ("", "no") for w in _words(restart, "Name")):
            raise deny("restart-policy", "a restart policy")


def _check_log_driver(policy: Policy, host: Mapping[str, Any]) -> None:
    for log_config in _values(host, "LogConfig"):
        if not isinstance(log_config, Mapping):
            continue
        for driver in _values(log_config, "Type"):
            # The engine's default when none is named: the daemon's own.
            if driver in (None, ""):
                continue
            if str(driver) not in policy.allowed_log_drivers:
                raise deny("log-driver", "a log driver that sends the log off the host")


def _check_capabilities(policy: Policy, host: Mapping[str, Any]) -> None:
    if policy.allow_cap_add:
        return
    if _set(host, "CapAdd"):
        raise deny("cap-add", "adding capabilities")
    # Capabilities replaces the engine's default set outright.
    if _set(host, "Capabilities"):
        raise deny("cap-add", "choosing the capability set")


def _unwired(value: Any, wired: frozenset[str]) -> bool:
    """Whether a list of container references holds one berth did not wire.

    Each entry must be one berth wrote, whole: a sibling's Docker name with
    the mode or alias the typed field gave it. Null and [] name nothing;
    anything else that is not a list is refused rather than interpreted.
    """
    if value is None:
        return False
    entries = value if isinstance(value, list | tuple) else [value]
    return any(not (isinstance(e, str) and e in wired) for e in entries)


def _check_references(host: Mapping[str, Any], wiring: Wiring) -> None:
    if any(_unwired(v, wiring.volumes_from) for v in _values(host, "VolumesFrom")):
        raise deny("volumes-from", "taking volumes from a container not a sibling")
    if any(_unwired(v, wiring.links) for v in _values(host, "Links")):
        raise deny("links", "a link to a container not a sibling")


def _check_named_volumes(host: Mapping[str, Any], wiring: Wiring) -> None:
    # Another task's volume, or one the operator made for something else
    # on the host, holds data this task has no business with.
    if any(v not in wiring.volumes for v in named_volume_sources(host)):
        raise deny("named-volume", "a Docker volume that is not the task's own")


def _endpoints(body: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Each network the body joins at create (NetworkingConfig), with the
    endpoint configuration it gives that network."""
    for networking in _values(body, "NetworkingConfig"):
        if not isinstance(networking, Mapping):
            continue
        for endpoints in _values(networking, "EndpointsConfig"):
            if isinstance(endpoints, Mapping):
                yield from ((str(n), e) for n, e in endpoints.items())


def _check_endpoint_networks(policy: Policy, body: Mapping[str, Any]) -> None:
    for name, _ in _endpoints(body):
        if name not in TASK_NETWORKS:
            raise deny("network", "a network other than bridge, host or none")
        if name == "host" and not policy.allow_host_network:
            raise deny("host-network", "the host's network namespace")


def _check_endpoint_links(body: Mapping[str, Any], wiring: Wiring) -> None:
    # An endpoint takes links of its own, beside HostConfig's. berth wires
    # none there; one repeating a link berth wired reaches no further, so
    # the same test applies.
    for _, endpoint in _endpoints(body):
        if not isinstance(endpoint, Mapping):
            continue
        if any(_unwired(v, wiring.links) for v in _values(endpoint, "Links")):
            raise deny("links", "a link to a container not a sibling")


def _wiring(body: Mapping[str, Any]) -> Wiring:
    # Only a body build_create_body made knows which references berth wired.
    # Any other is judged as if berth had wired none, so that a reference to
    # a container is refused rather than trusted.
    return body.wiring if isinstance(body, CreateBody) else Wiring()


def check_create_body(policy: Policy, body: Mapping[str, Any]) -> None:
    """Raise PolicyDeniedError naming the first rule the body breaks."""
    wiring = _wiring(body)
    for host in host_configs(body):
        _check_privileges(policy, host)
        _check_namespaces(policy, host)
        _check_capabilities(policy, host)
        _check_log_driver(policy, host)
        _check_restart_policy(host)
        _check_references(host, wiring)
        _check_named_volumes(host, wiring)
        for source in bind_sources(host):
            check_host_path(policy, source)
    _check_endpoint_networks(policy, body)
    _check_endpoint_links(body, wiring)


def _stand_ins(container: ContainerSpec) -> dict[str, str]:
    """Docker names for the siblings, which have none before the task is stored.

    Nobody can guess these, so a docker_config entry matches one only if berth
    wrote it, as at create. The sibling's own name would not do: a
    ``VolumesFrom: ["db:rw"]`` would then pass here as the typed field's, and
    at create name whichever container is called "db" on the engine.
    """
    token = secrets.token_hex(16)
    return {name: f"{token}-{name}" for name in container.dependencies()}


def check_task(policy: Policy, task: TaskSpec) -> None:
    """Judge every container of a task before the task is stored.

    The create path judges each body again, as it is sent: the settings may
    have changed since, and a task stored before a rule existed meets it.
    """
    for container in task.containers:
        body = build_create_body(task, "new", container, _stand_ins(container), {})
        check_create_body(policy, body)
