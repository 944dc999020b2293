"""The request models: what a valid task is, generated and mutated."""

from __future__ import annotations

import contextlib
import copy
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.service.spec import (
    MAX_CPU_SHARES,
    MIN_CPU_SHARES,
    MIN_MEMORY_MIB,
    TaskSpec,
    dependency_order,
)

NAME_CHARS = string.ascii_letters + string.digits + "-_"
SECRET = "s3cr3t-value-4f9a"

# Enough examples to find what breaks, few enough for a 2-core machine that
# others share; no deadline, as a loaded machine makes timings meaningless.
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

names = st.text(NAME_CHARS, min_size=1, max_size=12)
env_names = st.text(string.ascii_uppercase + "_", min_size=1, max_size=8)
# Any text but NUL, which no process can receive, and lone surrogates,
# which are not text.
env_values = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20
)


@st.composite
def port_mappings(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "container_port": draw(st.integers(1, 65535)),
        "host_port": draw(st.integers(0, 65535)),
        "protocol": draw(st.sampled_from(["tcp", "udp", "sctp"])),
        "host_ip": draw(st.sampled_from(["", "127.0.0.1", "::1", "0.0.0.0"])),
    }


@st.composite
def memory(draw: st.DrawFn) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    limit = draw(st.none() | st.integers(MIN_MEMORY_MIB, 1 << 20))
    if limit is not None:
        fields["memory_mib"] = limit
    top = limit if limit is not None else 1 << 20
    reservation = draw(st.none() | st.integers(MIN_MEMORY_MIB, top))
    if reservation is not None:
        fields["memory_reservation_mib"] = reservation
    return fields


@st.composite
def container(
    draw: st.DrawFn, name: str, earlier: list[str], volumes: list[str]
) -> Any:
    spec: dict[str, Any] = {
        "name": name,
        "image": draw(st.sampled_from(["busybox", "berth-test/busybox:latest"])),
        "environment": draw(st.dictionaries(env_names, env_values, max_size=3)),
        "port_mappings": draw(st.lists(port_mappings(), max_size=3)),
        "essential": draw(st.booleans()),
        "pull_policy": draw(st.sampled_from(["always", "if-missing", "never"])),
        **draw(memory()),
    }
    if draw(st.booleans()):
        spec["cpu_shares"] = draw(st.integers(MIN_CPU_SHARES, MAX_CPU_SHARES))
    if draw(st.booleans()):
        spec["command"] = draw(st.lists(env_values, max_size=3))
    if draw(st.booleans()):
        spec["docker_api_version"] = f"1.{draw(st.integers(24, 999))}"
    if earlier:
        # Only containers listed before this one: the task stays acyclic.
        spec["links"] = draw(st.lists(st.sampled_from(earlier), max_size=2))
        spec["volumes_from"] = [
            {"source_container": n, "read_only": draw(st.booleans())}
            for n in draw(st.lists(st.sampled_from(earlier), max_size=2))
        ]
    if volumes:
        spec["mount_points"] = [
            {"source_volume": v, "container_path": f"/mnt/{i}"}
            for i, v in enumerate(draw(st.lists(st.sampled_from(volumes), max_size=2)))
        ]
    return spec


def _free_host_ports(containers: list[dict[str, Any]]) -> None:
    """A fixed host port once per task: a second mapping asks for any."""
    seen: set[int] = set()
    for spec in containers:
        for mapping in spec["port_mappings"]:
            if mapping["host_port"] in seen:
                mapping["host_port"] = 0
            seen.add(mapping["host_port"] or -1)


@st.composite
def tasks(draw: st.DrawFn) -> dict[str, Any]:
    container_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    volume_names = draw(st.lists(names, max_size=3, unique=True))
    containers = [
        draw(container(name, container_names[:i], volume_names))
        for i, name in enumerate(container_names)
    ]
    _free_host_ports(containers)
    # Any order on the wire; the dependency order is berth's to find.
    containers = draw(st.permutations(containers))
    return {
        "arn": "arn:aws:ecs:us-east-1:1:task/" + draw(names),
        "family": draw(names),
        "version": draw(st.integers(1, 10_000) | names),
        "network_mode": draw(st.sampled_from(["bridge", "host", "none"])),
        "volumes": [
            {"name": v, "host_path": draw(st.none() | st.just(f"/srv/{i}"))}
            for i, v in enumerate(volume_names)
        ],
        "containers": containers,
    }


@FUZZ
@given(tasks())
def test_valid_task_round_trips(raw: dict[str, Any]) -> None:
    """A valid task validates, and its stored form validates to the same."""
    spec = TaskSpec.model_validate(raw)

    again = TaskSpec.model_validate(spec.model_dump(mode="json"))

    assert again == spec
    assert sorted(dependency_order(spec)) == sorted(c.name for c in spec.containers)


@FUZZ
@given(tasks())
def test_dependencies_come_first(raw: dict[str, Any]) -> None:
    """The dependency order puts every link and volumes-from target first."""
    spec = TaskSpec.model_validate(raw)

    order = dependency_order(spec)

    for c in spec.containers:
        assert all(order.index(d) < order.index(c.name) for d in c.dependencies())


Mutation = Callable[[dict[str, Any]], None]


def _first(task: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = task["containers"][0]
    return first


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _cycle(task: dict[str, Any]) -> None:
    a, b = _first(task), {"name": "cycle-b", "image": "busybox"}
    b["links"] = [a["name"]]
    a["volumes_from"] = [{"source_container": "cycle-b"}]
    task["containers"].append(b)


MUTATIONS: dict[str, Mutation] = {
    "negative memory": lambda t: _first(t).update(memory_mib=-1),
    "memory under the minimum": lambda t: _first(t).update(memory_mib=5),
    "reservation above the limit": lambda t: _first(t).update(
        memory_mib=64, memory_reservation_mib=65
    ),
    "cpu shares out of range": lambda t: _first(t).update(cpu_shares=1),
    "port 70000": lambda t: _first(t).update(port_mappings=[{"container_port": 70000}]),
    "port 0": lambda t: _first(t).update(port_mappings=[{"container_port": 0}]),
    "host port 65536": lambda t: _first(t).update(
        port_mappings=[{"container_port": 80, "host_port": 65536}]
    ),
    "one host port twice": lambda t: _first(t).update(
        port_mappings=[
            {"container_port": 80, "host_port": 8080},
            {"container_port": 81, "host_port": 8080, "host_ip": "127.0.0.1"},
        ]
    ),
    "protocol icmp": lambda t: _first(t).update(
        port_mappings=[{"container_port": 80, "protocol": "icmp"}]
    ),
    "host ip not an address": lambda t: _first(t).update(
        port_mappings=[{"container_port": 80, "host_ip": "example.com"}]
    ),
    "newline in a name": lambda t: _first(t).update(name="a\nb"),
    "empty name": lambda t: _first(t).update(name=""),
    "duplicate names": lambda t: t["containers"].append(copy.deepcopy(_first(t))),
    "link to an unknown container": lambda t: _first(t).update(links=["ghost"]),
    "volumes from an unknown container": lambda t: _first(t).update(
        volumes_from=[{"source_container": "ghost"}]
    ),
    "link to itself": lambda t: _first(t).update(links=[_first(t)["name"]]),
    "cycle": _cycle,
    "no containers": lambda t: t.update(containers=[]),
    "empty image": lambda t: _first(t).update(image=""),
    "image with a space": lambda t: _first(t).update(image="busy box"),
    "unknown network mode": lambda t: t.update(network_mode="overlay"),
    "bad api version": lambda t: _first(t).update(docker_api_version="v1.41"),
    "undeclared volume": lambda t: _first(t).update(
        mount_points=[{"source_volume": "ghost", "container_path": "/x"}]
    ),
    "relative mount path": lambda t: _first(t).update(
        mount_points=[{"source_volume": "ghost", "container_path": "x"}]
    ),
    "env name with =": lambda t: _first(t).update(environment={"A=B": "c"}),
    "NUL in an env value": lambda t: _first(t).update(environment={"A": "b\x00"}),
    "soft ulimit over hard": lambda t: _first(t).update(
        ulimits=[{"name": "nofile", "soft_limit": 10, "hard_limit": 5}]
    ),
    "unknown ulimit": lambda t: _first(t).update(
        ulimits=[{"name": "files", "soft_limit": 1, "hard_limit": 1}]
    ),
    "relative working dir": lambda t: _first(t).update(working_dir="app"),
    "zero as false": lambda t: _first(t).update(essential=0),
    "float as integer": lambda t: _first(t).update(memory_mib=64.0),
    "string as integer": lambda t: _first(t).update(cpu_shares="512"),
    "raw env without a name": lambda t: _first(t).update(
        docker_config={"config": {"Env": ["=value"]}}
    ),
    "raw env with NUL": lambda t: _first(t).update(
        docker_config={"config": {"env": ["A=b\x00"]}}
    ),
    "unknown field": lambda t: _first(t).update(priviledged=True),
    "docker_config nested 300 deep": lambda t: _first(t).update(
        docker_config={"host_config": {"X": _nested(300)}}
    ),
    "a key not in ASCII": lambda t: _first(t).update(
        docker_config={"host_config": {"Pr\u0131vileged": True}}
    ),
    "a number that is not finite": lambda t: _first(t).update(
        docker_config={"host_config": {"Memory": float("inf")}}
    ),
    "NaN": lambda t: _first(t).update(
        docker_config={"config": {"Healthcheck": {"Retries": float("nan")}}}
    ),
    "a key twice in two cases": lambda t: _first(t).update(
        docker_config={
            "host_config": {
                "Mounts": [{"Type": "volume", "type": "bind", "Source": "/etc"}]
            }
        }
    ),
    "control character in the arn": lambda t: t.update(arn="arn\x7f"),
}


@FUZZ
@given(tasks(), st.sampled_from(sorted(MUTATIONS)))
def test_invalid_task_is_a_validation_error(raw: dict[str, Any], name: str) -> None:
    """Each known way of breaking a valid task raises ValidationError."""
    MUTATIONS[name](raw)

    with pytest.raises(ValidationError):
        TaskSpec.model_validate(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(json_values)
def test_any_json_is_valid_or_a_validation_error(raw: Any) -> None:
    """Whatever JSON arrives, validation answers with ValidationError or a spec."""
    with contextlib.suppress(ValidationError):
        TaskSpec.model_validate(raw)


@FUZZ
@given(tasks(), st.data())
def test_any_field_replaced_is_valid_or_a_validation_error(
    raw: dict[str, Any], data: st.DataObject
) -> None:
    """A valid task with one field replaced by any JSON never crashes validation."""
    target = data.draw(st.sampled_from([raw, *raw["containers"]]))
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(json_values)

    with contextlib.suppress(ValidationError):
        TaskSpec.model_validate(raw)


def test_errors_do_not_echo_input_values() -> None:
    """A validation error never repeats the values it was given."""
    raw = {
        "arn": "arn:x",
        "family": "f",
        "version": "1",
        "containers": [
            {"name": "a", "image": "busybox", "environment": {"K": 5, "L": SECRET}},
            {"name": "a", "image": "busybox", "environment": {"K": SECRET}},
        ],
    }

    with pytest.raises(ValidationError) as caught:
        TaskSpec.model_validate(raw)

    assert SECRET not in str(caught.value)


def _two_mappings(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {
        "arn": "arn:ports",
        "family": "ports",
        "version": "1",
        "containers": [
            {"name": "a", "image": "busybox", "port_mappings": [first]},
            {"name": "b", "image": "busybox", "port_mappings": [second]},
        ],
    }


def test_two_containers_cannot_claim_one_host_port() -> None:
    """A fixed host port mapped by two containers of a task is refused at
    registration, instead of failing the second start later."""
    task = _two_mappings(
        {"container_port": 80, "host_port": 8080},
        {"container_port": 90, "host_port": 8080, "host_ip": "::"},
    )

    with pytest.raises(ValidationError, match="host port 8080/tcp"):
        TaskSpec.model_validate(task)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"host_port": 8080}, {"host_port": 8080, "protocol": "udp"}),
        (
            {"host_port": 8080, "host_ip": "127.0.0.1"},
            {"host_port": 8080, "host_ip": "127.0.0.2"},
        ),
        ({"host_port": 0}, {"host_port": 0}),
    ],
)
def test_host_ports_that_do_not_clash_are_kept(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    """Another protocol, two distinct addresses, or ports the engine picks
    are no clash."""
    task = _two_mappings(
        {"container_port": 80, **first}, {"container_port": 80, **second}
    )

    spec = TaskSpec.model_validate(task)

    assert len(spec.containers) == 2
