"""The Engine API create body: a pure function of the specs."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.service.labels import HOST_ID, ownership_labels
from app.service.naming import VALID_NAME
from app.service.request import (
    MIB,
    build_create_body,
    deep_merge,
    task_volume_source,
)
from app.service.spec import TaskSpec, TaskVolume

PREFIX = "com.amazonaws.ecs."
TASK_ID = "0123456789abcdef0123456789abcdef"
SIBLINGS = {
    "db": "ecs-web-3-db-aaaaaaaaaaaaaaaaaaaa",
    "data": "ecs-web-3-data-bbbbbbbbbbbbbbbbbbbb",
}
OWNERSHIP = ownership_labels(
    PREFIX,
    task_arn="arn:task/1",
    container_name="app",
    family="web",
    version="3",
    cluster="default",
    host_id="host-a",
)


def task(network_mode: str | None = None, **app: Any) -> TaskSpec:
    """A task with an ``app`` container (given fields) and two siblings."""
    spec: dict[str, Any] = {
        "arn": "arn:task/1",
        "family": "web",
        "version": 3,
        "volumes": [
            {"name": "scratch"},
            {"name": "logs", "host_path": "/srv/logs"},
        ],
        "containers": [
            {"name": "db", "image": "db:1"},
            {"name": "data", "image": "data:1"},
            {"name": "app", "image": "app:1", **app},
        ],
    }
    if network_mode is not None:
        spec["network_mode"] = network_mode
    return TaskSpec.model_validate(spec)


def body_of(spec: TaskSpec) -> dict[str, Any]:
    container = spec.container("app")
    assert container is not None
    return build_create_body(spec, TASK_ID, container, SIBLINGS, OWNERSHIP)


def host_of(spec: TaskSpec) -> dict[str, Any]:
    host: dict[str, Any] = body_of(spec)["HostConfig"]
    return host


def test_a_bare_container_gets_its_image_bridge_and_our_labels() -> None:
    """Nothing set: the image, the bridge network, the ownership labels."""
    body = body_of(task())

    assert body["Image"] == "app:1"
    assert body["HostConfig"] == {"NetworkMode": "bridge"}
    assert body["Labels"] == OWNERSHIP


def test_memory_reservation_and_cpu_shares() -> None:
    """MiB become bytes; CPU shares pass through."""
    host = host_of(task(memory_mib=64, memory_reservation_mib=32, cpu_shares=512))

    assert host["Memory"] == 64 * MIB
    assert host["MemoryReservation"] == 32 * MIB
    assert host["CpuShares"] == 512


def test_port_mappings_expose_and_bind() -> None:
    """A fixed host port is bound; port 0 asks the engine for an ephemeral one."""
    body = body_of(
        task(
            port_mappings=[
                {"container_port": 80, "host_port": 8080},
                {"container_port": 53, "protocol": "udp", "host_ip": "127.0.0.1"},
            ]
        )
    )

    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert body["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
    }


def test_links_use_the_siblings_docker_names_and_aliases() -> None:
    """A link names the sibling's Docker name; its alias defaults to its name."""
    host = host_of(task(links=["db:database", "data"]))

    assert host["Links"] == [f"{SIBLINGS['db']}:database", f"{SIBLINGS['data']}:data"]


def test_volumes_from_use_docker_names_with_their_mode() -> None:
    """Read-only and read-write volumes-from both name the sibling's container."""
    host = host_of(
        task(
            volumes_from=[
                {"source_container": "db", "read_only": True},
                {"source_container": "data"},
            ]
        )
    )

    assert host["VolumesFrom"] == [f"{SIBLINGS['db']}:ro", f"{SIBLINGS['data']}:rw"]


def test_mount_points_bind_host_paths_and_task_docker_volumes() -> None:
    """A host-path volume binds the path; any other is a per-task Docker volume."""
    host = host_of(
        task(
            mount_points=[
                {"source_volume": "logs", "container_path": "/var/log"},
                {
                    "source_volume": "scratch",
                    "container_path": "/tmp/s",
                    "read_only": True,
                },
            ]
        )
    )

    logs, scratch = host["Binds"]
    assert logs == "/srv/logs:/var/log:rw"
    assert re.fullmatch(rf"berth-{TASK_ID}-scratch-[0-9a-f]{{12}}:/tmp/s:ro", scratch)


def test_task_docker_volumes_of_different_names_never_share() -> None:
    """Volume names that clean to the same text still get their own volumes."""
    spec = TaskSpec.model_validate(
        {
            "arn": "arn:task/1",
            "family": "web",
            "version": 3,
            "volumes": [{"name": "a.b"}, {"name": "ab"}, {"name": "é"}, {"name": "ü"}],
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "mount_points": [
                        {"source_volume": v, "container_path": f"/m{i}"}
                        for i, v in enumerate(["a.b", "ab", "é", "ü"])
                    ],
                }
            ],
        }
    )

    binds = host_of(spec)["Binds"]

    sources = [b.split(":")[0] for b in binds]
    assert len(set(sources)) == 4
    assert all(s.startswith(f"berth-{TASK_ID}-") for s in sources)


def test_process_fields_go_to_the_config() -> None:
    """Environment, command, entrypoint, directory, user and hostname."""
    body = body_of(
        task(
            environment={"A": "1", "B": "x=y"},
            command=["-c", "echo hi"],
            entrypoint=["sh"],
            working_dir="/srv",
            user="1000:1000",
            hostname="app-host",
        )
    )

    assert body["Env"] == ["A=1", "B=x=y"]
    assert body["Cmd"] == ["-c", "echo hi"]
    assert body["Entrypoint"] == ["sh"]
    assert body["WorkingDir"] == "/srv"
    assert body["User"] == "1000:1000"
    assert body["Hostname"] == "app-host"


def test_ulimits_log_configuration_and_readonly_root() -> None:
    """Ulimits, the log driver with its options, and a read-only root."""
    host = host_of(
        task(
            ulimits=[{"name": "nofile", "soft_limit": 1024, "hard_limit": 4096}],
            log_configuration={
                "log_driver": "json-file",
                "options": {"max-size": "10m"},
            },
            readonly_root_filesystem=True,
        )
    )

    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m"}}
    assert host["ReadonlyRootfs"] is True


@pytest.mark.parametrize("mode", ["bridge", "none", "host"])
def test_network_mode_comes_from_the_task(mode: str) -> None:
    """The task's network mode is used as given, host only when it says so."""
    assert host_of(task(network_mode=mode))["NetworkMode"] == mode


def test_network_mode_defaults_to_bridge_never_host() -> None:
    """A task that names no network mode gets the bridge."""
    assert host_of(task())["NetworkMode"] == "bridge"


def test_docker_config_is_deep_merged_over_the_typed_fields() -> None:
    """Objects merge key by key; scalars and lists replace."""
    body = body_of(
        task(
            memory_mib=64,
            environment={"A": "1"},
            log_configuration={"log_driver": "json-file", "options": {"a": "1"}},
            docker_config={
                "config": {"Env": ["B=2"], "Healthcheck": {"Test": ["NONE"]}},
                "host_config": {
                    "ShmSize": 67108864,
                    "Memory": 128 * MIB,
                    "LogConfig": {"Config": {"b": "2"}},
                },
            },
        )
    )

    host = body["HostConfig"]
    assert body["Env"] == ["B=2"]
    assert body["Healthcheck"] == {"Test": ["NONE"]}
    assert host["ShmSize"] == 67108864
    assert host["Memory"] == 128 * MIB
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"a": "1", "b": "2"}}
    assert host["NetworkMode"] == "bridge"


def test_docker_config_labels_merge_with_docker_labels() -> None:
    """Labels from docker_config join the docker_labels, ours set over both."""
    body = body_of(
        task(
            docker_labels={"team": "a"},
            docker_config={"config": {"Labels": {"tier": "web"}}},
        )
    )

    assert body["Labels"] == {"team": "a", "tier": "web", **OWNERSHIP}


def test_labels_are_set_last_even_when_docker_config_nulls_them() -> None:
    """``Labels: null`` in docker_config still leaves every ownership label."""
    body = body_of(
        task(docker_labels={"team": "a"}, docker_config={"config": {"Labels": None}})
    )

    assert body["Labels"] == OWNERSHIP


def test_ownership_keys_cannot_be_set_by_the_user() -> None:
    """docker_labels and docker_config both lose to the ownership labels."""
    body = body_of(
        task(
            docker_labels={PREFIX + "task-arn": "arn:evil", "keep": "me"},
            docker_config={
                "config": {
                    "Labels": {PREFIX + "container-name": "db", HOST_ID: "host-b"}
                }
            },
        )
    )

    assert body["Labels"] == {"keep": "me", **OWNERSHIP}


@pytest.mark.parametrize("labels_key", ["labels", "LABELS", "Labels"])
@pytest.mark.parametrize("typed", [{"keep": "me"}, {}])
def test_ownership_wins_over_any_spelling_of_labels(
    labels_key: str, typed: dict[str, str]
) -> None:
    """The engine reads ``labels`` as ``Labels``: ownership is set on the
    one field, so no spelling of it can carry other owners' values."""
    forged = {HOST_ID: "host-b", PREFIX + "task-arn": "arn:victim", "x": "y"}
    body = body_of(
        task(docker_labels=typed, docker_config={"config": {labels_key: forged}})
    )

    spellings = [k for k in body if k.casefold() == "labels"]
    assert spellings == ["Labels"]
    assert body["Labels"] == {**typed, "x": "y", **OWNERSHIP}


def test_any_spelling_of_host_config_merges_into_the_one_field() -> None:
    """``config.hostconfig`` and ``host_config`` both reach the one
    HostConfig, host_config last, as the README's merge order says."""
    body = body_of(
        task(
            docker_config={
                "config": {"hostconfig": {"ShmSize": 2, "CpuShares": 7}},
                "host_config": {"shmsize": 1},
            }
        )
    )

    assert [k for k in body if k.casefold() == "hostconfig"] == ["HostConfig"]
    assert body["HostConfig"]["ShmSize"] == 1
    assert body["HostConfig"]["CpuShares"] == 7
    assert "shmsize" not in body["HostConfig"]


def test_a_host_config_nulled_by_docker_config_keeps_its_merge() -> None:
    """``HostConfig: null`` in config still lets host_config merge in."""
    body = body_of(
        task(
            docker_config={
                "config": {"HostConfig": None},
                "host_config": {"ShmSize": 1024},
            }
        )
    )

    assert body["HostConfig"] == {"ShmSize": 1024}


def test_the_body_is_pure_and_leaves_the_spec_alone() -> None:
    """Two builds are equal; the spec's docker_config is not changed."""
    spec = task(
        docker_labels={"a": "1"},
        docker_config={
            "config": {"Labels": {"b": "2"}},
            "host_config": {"LogConfig": {"Config": {"x": "1"}}},
        },
    )
    before = copy.deepcopy(spec.model_dump())

    first = body_of(spec)
    first["Labels"]["mutated"] = "yes"
    first["HostConfig"]["LogConfig"]["Config"]["mutated"] = "yes"
    second = body_of(spec)

    assert "mutated" not in second["Labels"]
    assert "mutated" not in second["HostConfig"]["LogConfig"]["Config"]
    assert spec.model_dump() == before


def test_deep_merge_replaces_with_null_and_lists() -> None:
    """null and lists in the override replace; nested objects merge."""
    base = {"a": {"x": 1, "y": 2}, "b": [1], "c": 1}

    merged = deep_merge(base, {"a": {"y": 3}, "b": [2], "c": None})

    assert merged == {"a": {"x": 1, "y": 3}, "b": [2], "c": None}
    assert base == {"a": {"x": 1, "y": 2}, "b": [1], "c": 1}


@given(name=st.text(min_size=1, max_size=255))
def test_task_docker_volume_names_are_valid_and_bounded(name: str) -> None:
    """Any volume name gives a valid Docker volume name of bounded length."""
    source = task_volume_source(TASK_ID, TaskVolume.model_construct(name=name))

    assert VALID_NAME.fullmatch(source)
    assert len(source) <= 128
