"""The Engine API create request, built from the specs.

A pure function of the task, the container and the siblings' Docker names:
the same inputs always give the same body, which is what makes a retried
create safe to compare and to test without an engine.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.service.labels import with_ownership
from app.service.naming import clean
from app.service.spec import ContainerSpec, TaskSpec, TaskVolume

MIB = 1024 * 1024

# How much of a task volume's cleaned name goes into its Docker volume's
# name; the hash beside it is what keeps two volumes apart.
VOLUME_NAME_ROOM = 64


@dataclass(frozen=True)
class Wiring:
    """The references to sibling containers berth wrote from the typed
    ``links`` and ``volumes_from``, exactly as they stand in the body."""

    links: frozenset[str] = frozenset()
    volumes_from: frozenset[str] = frozenset()
    # The named Docker volumes the typed mount points reach: the task's own.
    volumes: frozenset[str] = frozenset()


class CreateBody(dict[str, Any]):
    """A create body that remembers what berth wired from the typed fields.

    Once ``docker_config`` is merged in, a sibling's Docker name in
    ``VolumesFrom`` or ``Links`` looks no different from any other
    container's; the policy tells them apart by this record. It travels with
    the body because the body is all the policy is handed at create.
    """

    def __init__(self, body: Mapping[str, Any], wiring: Wiring) -> None:
        super().__init__(body)
        self.wiring = wiring


def _spelled(obj: Mapping[str, Any], key: str) -> str:
    """The key of ``obj`` the engine would read ``key`` as, else ``key``.

    The engine matches a key in any letter case; so does the merge, or a
    ``labels`` beside berth's ``Labels`` would reach the engine as a second
    spelling of the same field, one berth never sees as its own.
    """
    folded = key.casefold()
    return next((k for k in obj if k.casefold() == folded), key)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: objects merge key by key (in any letter
    case), anything else (lists and null included) replaces; as decoding
    JSON into a filled Go struct does in the ECS agent."""
    merged = dict(base)
    for key, value in override.items():
        key = _spelled(merged, key)
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            # A copy: the body must not share objects with the stored spec.
            merged[key] = copy.deepcopy(value)
    return merged


def task_volume_source(task_id: str, volume: TaskVolume) -> str:
    """A host path, or the Docker volume that holds this task volume."""
    if volume.host_path:
        return volume.host_path

    # Cleaning can make two names one ("a.b" and "ab"), so a hash of the
    # name as given keeps every task volume in a Docker volume of its own.
    digest = hashlib.sha256(volume.name.encode()).hexdigest()[:12]
    readable = clean(volume.name)[:VOLUME_NAME_ROOM] or "volume"
    return f"berth-{task_id}-{readable}-{digest}"


def _config(container: ContainerSpec) -> dict[str, Any]:
    config: dict[str, Any] = {"Image": container.image}
    if container.command is not None:
        config["Cmd"] = list(container.command)
    if container.entrypoint is not None:
        config["Entrypoint"] = list(container.entrypoint)
    if container.environment:
        config["Env"] = [f"{k}={v}" for k, v in container.environment.items()]
    if container.working_dir:
        config["WorkingDir"] = container.working_dir
    if container.user:
        config["User"] = container.user
    if container.hostname:
        config["Hostname"] = container.hostname
    if container.port_mappings:
        config["ExposedPorts"] = {
            f"{p.container_port}/{p.protocol}": {} for p in container.port_mappings
        }
    if container.docker_labels:
        config["Labels"] = dict(container.docker_labels)
    return config


def _port_bindings(container: ContainerSpec) -> dict[str, list[dict[str, str]]]:
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in container.port_mappings:
        key = f"{port.container_port}/{port.protocol}"
        host_port = str(port.host_port) if port.host_port else ""
        bindings.setdefault(key, []).append(
            {"HostIp": port.host_ip, "HostPort": host_port}
        )
    return bindings


def _binds(task: TaskSpec, task_id: str, container: ContainerSpec) -> list[str]:
    volumes = {v.name: v for v in task.volumes}
    binds = []
    for mount in container.mount_points:
        source = task_volume_source(task_id, volumes[mount.source_volume])
        mode = "ro" if mount.read_only else "rw"
        binds.append(f"{source}:{mount.container_path}:{mode}")
    return binds


def _host_config(
    task: TaskSpec,
    task_id: str,
    container: ContainerSpec,
    siblings: Mapping[str, str],
) -> dict[str, Any]:
    host: dict[str, Any] = {"NetworkMode": task.network_mode}
    if container.memory_mib is not None:
        host["Memory"] = container.memory_mib * MIB
    if container.memory_reservation_mib is not None:
        host["MemoryReservation"] = container.memory_reservation_mib * MIB
    if container.cpu_shares is not None:
        host["CpuShares"] = container.cpu_shares
    if container.port_mappings:
        host["PortBindings"] = _port_bindings(container)
    if container.links:
        host["Links"] = _links(container, siblings)
    if container.volumes_from:
        host["VolumesFrom"] = _volumes_from(container, siblings)
    binds = _binds(task, task_id, container)
    if binds:
        host["Binds"] = binds
    if container.privileged:
        host["Privileged"] = True
    if container.readonly_root_filesystem:
        host["ReadonlyRootfs"] = True
    if container.ulimits:
        host["Ulimits"] = [
            {"Name": u.name, "Soft": u.soft_limit, "Hard": u.hard_limit}
            for u in container.ulimits
        ]
    if container.log_configuration is not None:
        host["LogConfig"] = {
            "Type": container.log_configuration.log_driver,
            "Config": dict(container.log_configuration.options),
        }
    return host


def _link(link: str, siblings: Mapping[str, str]) -> str:
    target, _, alias = link.partition(":")
    return f"{siblings[target]}:{alias or target}"


def _links(container: ContainerSpec, siblings: Mapping[str, str]) -> list[str]:
    return [_link(link, siblings) for link in container.links]


def _volumes_from(container: ContainerSpec, siblings: Mapping[str, str]) -> list[str]:
    return [
        f"{siblings[v.source_container]}:{'ro' if v.read_only else 'rw'}"
        for v in container.volumes_from
    ]


def _wiring(
    task: TaskSpec, task_id: str, container: ContainerSpec, siblings: Mapping[str, str]
) -> Wiring:
    volumes = {v.name: v for v in task.volumes}
    named = {
        task_volume_source(task_id, volumes[mount.source_volume])
        for mount in container.mount_points
        if not volumes[mount.source_volume].host_path
    }
    return Wiring(
        links=frozenset(_links(container, siblings)),
        volumes_from=frozenset(_volumes_from(container, siblings)),
        volumes=frozenset(named),
    )


def build_create_body(
    task: TaskSpec,
    task_id: str,
    container: ContainerSpec,
    siblings: Mapping[str, str],
    ownership: Mapping[str, str],
) -> CreateBody:
    """The ``POST /containers/create`` body for ``container``.

    ``siblings`` maps each container this one links to or takes volumes
    from to its Docker name. ``docker_config`` is merged over what the
    typed fields built, and the ownership labels are set last of all. The
    body records the sibling references the typed fields made (``wiring``).
    """
    body = _config(container)
    body["HostConfig"] = _host_config(task, task_id, container, siblings)

    raw = container.docker_config
    if raw is not None and raw.config:
        body = deep_merge(body, raw.config)
    if raw is not None and raw.host_config:
        key = _spelled(body, "HostConfig")
        host = body.get(key)
        body[key] = deep_merge(
            host if isinstance(host, Mapping) else {}, raw.host_config
        )

    # Ownership goes on the one Labels field the engine reads, however
    # docker_config spelled it, and last.
    labels = body.pop(_spelled(body, "Labels"), None)
    body["Labels"] = with_ownership(
        labels if isinstance(labels, Mapping) else None, ownership
    )
    return CreateBody(body, _wiring(task, task_id, container, siblings))
