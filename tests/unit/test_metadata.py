"""Inspect → metadata conversion, on documents captured from a real engine.

The fixtures under ``fixtures/inspect`` are ``docker inspect`` output from
Docker 20.10 (API 1.41) with IPv6 on, so the "::" twins of published ports
are real, not hand-made:

- ``created``: created, never started, with ``-p 8080 -p 9090/udp
  -p 127.0.0.1::53/udp``; its ``NetworkSettings.Ports`` is ``{}``.
- ``published``: the same ports plus ``--expose 7000``, running, healthy.
- ``running``: ``-p 8080:80 -p 9053:53/udp`` with two labels.
- ``stopped``: ``running`` after ``docker stop`` (exit 137, ports cleared).
- ``exited``: ``sh -c 'exit 3'``.
- ``oom``: ``-m 6m`` reading /dev/zero into ``tail``; OOMKilled true.
- ``staterror``: started with a missing binary; ``State.Error`` set.
- ``volumes``: a named volume, a read-only bind mount and a tmpfs.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.engine.metadata import (
    ContainerMetadata,
    PortBinding,
    VolumeMount,
    convert_inspect,
    merge_previous,
    parse_docker_time,
    parse_port_bindings,
)

FIXTURES = Path(__file__).parent / "fixtures" / "inspect"
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def with_state(**state: Any) -> dict[str, Any]:
    """A minimal document with the given State fields."""
    return {"Id": "abc", "State": state}


def with_ports(ports: Any) -> dict[str, Any]:
    return {"Id": "abc", "NetworkSettings": {"Ports": ports}}


def binding(
    container_port: int, host_port: int, protocol: str = "tcp", ip: str = "0.0.0.0"
) -> PortBinding:
    return PortBinding(
        container_port=container_port,
        host_port=host_port,
        protocol=protocol,
        host_ip=ip,
    )


# --- real documents -------------------------------------------------------


def test_created_container_has_identity_and_no_runtime_facts() -> None:
    """A created container has its ID and name but no exit code or times."""
    doc = load("created")

    meta = convert_inspect(doc)

    assert meta.docker_id == doc["Id"]
    assert meta.docker_name == "berth-meta-fx-created"
    assert meta.docker_status == "created"
    assert meta.running is False
    assert meta.exit_code is None
    assert meta.error is None
    assert meta.started_at is None
    assert meta.finished_at is None
    assert meta.created_at == datetime(2026, 12, 3, 19, 21, 46, 292013, tzinfo=UTC)


def test_created_container_reports_no_ports_before_start() -> None:
    """Before start Docker publishes nothing, so no bindings are reported."""
    doc = load("created")

    meta = convert_inspect(doc)

    # The requested ports live in HostConfig.PortBindings until start.
    assert doc["NetworkSettings"]["Ports"] == {}
    assert meta.port_bindings == []


def test_published_ports_keep_ipv4_and_ipv6_twins_sorted() -> None:
    """Every host binding is kept, with its IP, in a stable order."""
    doc = load("published")

    meta = convert_inspect(doc)

    assert meta.port_bindings == [
        binding(53, 32769, "udp", "127.0.0.1"),
        binding(8080, 32769, "tcp", "0.0.0.0"),
        binding(8080, 32769, "tcp", "::"),
        binding(9090, 32768, "udp", "0.0.0.0"),
        binding(9090, 32768, "udp", "::"),
    ]


def test_exposed_but_unpublished_port_yields_nothing() -> None:
    """A port Docker lists as null (only exposed) yields no binding."""
    doc = load("published")

    meta = convert_inspect(doc)

    assert doc["NetworkSettings"]["Ports"]["7000/tcp"] is None
    assert all(b.container_port != 7000 for b in meta.port_bindings)


def test_running_container_reports_health_and_no_exit_code() -> None:
    """A running container has health and a start time, but no exit code."""
    doc = load("published")

    meta = convert_inspect(doc)

    assert meta.running is True
    assert meta.docker_status == "running"
    assert meta.health == "healthy"
    assert meta.exit_code is None
    assert meta.started_at is not None
    assert meta.finished_at is None


def test_labels_come_from_config() -> None:
    """Labels are Config.Labels as they are."""
    doc = load("running")

    meta = convert_inspect(doc)

    assert meta.labels == {"berth.task": "abc", "com.example.k": "v"}


def test_exited_container_reports_its_exit_code() -> None:
    """A container that exited with 3 reports 3 and no error."""
    doc = load("exited")

    meta = convert_inspect(doc)

    assert meta.exit_code == 3
    assert meta.docker_status == "exited"
    assert meta.error is None
    assert meta.finished_at is not None


def test_stopped_container_has_cleared_ports() -> None:
    """Docker empties Ports on stop, so the conversion sees none."""
    doc = load("stopped")

    meta = convert_inspect(doc)

    assert meta.exit_code == 137
    assert meta.port_bindings == []


def test_oom_killed_container_is_an_out_of_memory_error() -> None:
    """A stopped container killed for memory reports OutOfMemoryError."""
    doc = load("oom")

    meta = convert_inspect(doc)

    assert meta.oom_killed is True
    assert meta.exit_code == 137
    assert meta.error is not None
    assert meta.error.name == "OutOfMemoryError"


def test_failed_start_is_a_docker_state_error_without_exit_code() -> None:
    """State.Error becomes DockerStateError; a never-finished has no exit code."""
    doc = load("staterror")

    meta = convert_inspect(doc)

    # Docker writes 127 to ExitCode although the container never ran.
    assert doc["State"]["ExitCode"] == 127
    assert meta.exit_code is None
    assert meta.error is not None
    assert meta.error.name == "DockerStateError"
    assert "/no/such/binary" in meta.error.message


def test_mounts_become_volumes_sorted_by_destination() -> None:
    """Bind and volume mounts are reported; a tmpfs is not in Mounts at all."""
    doc = load("volumes")

    meta = convert_inspect(doc)

    assert meta.volumes == [
        VolumeMount(
            source="/tmp/berth-meta-fx-bind",
            destination="/bind",
            type="bind",
            name=None,
            read_only=True,
        ),
        VolumeMount(
            source="/var/lib/docker/volumes/berth-meta-fx-vol/_data",
            destination="/data",
            type="volume",
            name="berth-meta-fx-vol",
            read_only=False,
        ),
    ]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_converts_to_serialisable_metadata(name: str) -> None:
    """Each captured document converts and serialises to JSON."""
    doc = load(name)

    meta = convert_inspect(doc)

    assert meta.docker_id == doc["Id"]
    assert json.loads(meta.model_dump_json())["docker_id"] == doc["Id"]


# --- hand-made edge cases -------------------------------------------------


def test_empty_document_gives_empty_metadata() -> None:
    """An empty document converts to the defaults."""
    doc: dict[str, Any] = {}

    meta = convert_inspect(doc)

    assert meta == ContainerMetadata()


@pytest.mark.parametrize(
    "doc",
    [
        {"NetworkSettings": None},
        {"NetworkSettings": {"Ports": None}},
        {"NetworkSettings": {"Ports": {}}},
        {"NetworkSettings": {"Ports": {"80/tcp": []}}},
        {"NetworkSettings": {"Ports": {"80/tcp": None}}},
        {"NetworkSettings": {"Ports": {"80/tcp": [{"HostPort": ""}]}}},
        {"NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0"}]}}},
    ],
)
def test_absent_or_unpublished_ports_yield_nothing(doc: dict[str, Any]) -> None:
    """Null, empty and unassigned ports yield no bindings and no error."""
    doc["Id"] = "abc"

    meta = convert_inspect(doc)

    assert meta.port_bindings == []
    assert meta.error is None
    assert meta.docker_id == "abc"


def test_bare_port_key_means_tcp() -> None:
    """A key without "/proto" is tcp."""
    ports = {"80": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}

    bindings, error = parse_port_bindings(ports)

    assert bindings == [binding(80, 8080, "tcp")]
    assert error is None


@pytest.mark.parametrize("protocol", ["udp", "sctp"])
def test_udp_and_sctp_keep_their_protocol(protocol: str) -> None:
    """udp and sctp keys keep their protocol."""
    ports = {f"80/{protocol}": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}

    bindings, error = parse_port_bindings(ports)

    assert bindings == [binding(80, 8080, protocol)]
    assert error is None


def test_missing_host_ip_becomes_empty_string() -> None:
    """A binding without HostIp still counts, with an empty IP."""
    ports = {"80/tcp": [{"HostPort": "8080"}]}

    bindings, _ = parse_port_bindings(ports)

    assert bindings == [binding(80, 8080, "tcp", "")]


@pytest.mark.parametrize("key", ["abc/tcp", "80/icmp", "0/tcp", "70000/tcp", "/tcp"])
def test_unparseable_key_is_an_error_that_keeps_the_rest(key: str) -> None:
    """A bad key is named in PortBindingParseError; good bindings survive."""
    doc = with_ports(
        {
            key: [{"HostIp": "0.0.0.0", "HostPort": "1"}],
            "80/udp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
        }
    )

    meta = convert_inspect(doc)

    assert meta.docker_id == "abc"
    assert meta.port_bindings == [binding(80, 8080, "udp")]
    assert meta.error is not None
    assert meta.error.name == "PortBindingParseError"
    assert repr(key) in meta.error.message


@pytest.mark.parametrize("host_port", ["x", "-1", "65536", "8080a", 1.5, True])
def test_unparseable_host_port_is_an_error_naming_the_key(host_port: Any) -> None:
    """A bad HostPort is an error naming its key; other bindings survive."""
    ports = {
        "80/tcp": [
            {"HostIp": "0.0.0.0", "HostPort": host_port},
            {"HostIp": "::", "HostPort": "8080"},
        ]
    }

    bindings, error = parse_port_bindings(ports)

    assert bindings == [binding(80, 8080, "tcp", "::")]
    assert error is not None
    assert error.name == "PortBindingParseError"
    assert "'80/tcp'" in error.message


@pytest.mark.parametrize("ports", [[], "80/tcp", 80, {"80/tcp": "8080"}])
def test_malformed_ports_shape_is_an_error(ports: Any) -> None:
    """Ports or a port's bindings of the wrong type are a parse error."""
    doc = with_ports(ports)

    meta = convert_inspect(doc)

    assert meta.port_bindings == []
    assert meta.error is not None
    assert meta.error.name == "PortBindingParseError"


def test_running_container_with_oom_kill_is_not_an_error() -> None:
    """A child OOM-killed inside a running container is not a failure."""
    doc = with_state(
        Running=True,
        OOMKilled=True,
        StartedAt="2024-05-01T10:00:00.123456789Z",
        FinishedAt="0001-01-01T00:00:00Z",
    )

    meta = convert_inspect(doc)

    assert meta.oom_killed is True
    assert meta.error is None
    assert meta.exit_code is None


def test_out_of_memory_wins_over_state_error_and_ports() -> None:
    """OutOfMemoryError wins over State.Error and a port parse error."""
    doc = with_state(
        Running=False,
        OOMKilled=True,
        Error="something else",
        ExitCode=137,
        FinishedAt="2024-05-01T10:00:00Z",
    )
    doc["NetworkSettings"] = {"Ports": {"bad": None}}

    meta = convert_inspect(doc)

    assert meta.error is not None
    assert meta.error.name == "OutOfMemoryError"


def test_state_error_wins_over_port_parse_error() -> None:
    """DockerStateError is reported in preference to a port parse error."""
    doc = with_state(Running=False, Error="no such file")
    doc["NetworkSettings"] = {"Ports": {"bad": None}}

    meta = convert_inspect(doc)

    assert meta.error is not None
    assert meta.error.name == "DockerStateError"
    assert meta.error.message == "no such file"


def test_oom_flag_without_finish_time_is_not_an_error() -> None:
    """OOMKilled on a container that never finished is not OutOfMemoryError."""
    doc = with_state(Running=False, OOMKilled=True, FinishedAt="0001-01-01T00:00:00Z")

    meta = convert_inspect(doc)

    assert meta.oom_killed is True
    assert meta.error is None


@pytest.mark.parametrize("finished_at", [None, "", "0001-01-01T00:00:00Z"])
def test_exit_code_needs_a_finish_time(finished_at: Any) -> None:
    """Without a real FinishedAt there is no exit code."""
    doc = with_state(Running=False, ExitCode=1, FinishedAt=finished_at)

    meta = convert_inspect(doc)

    assert meta.exit_code is None


def test_running_container_has_no_exit_code() -> None:
    """A running container has no exit code even if FinishedAt is set."""
    # A restarted container keeps the FinishedAt of its previous run.
    doc = with_state(Running=True, ExitCode=1, FinishedAt="2024-05-01T10:00:00Z")

    meta = convert_inspect(doc)

    assert meta.exit_code is None


def test_name_loses_docker_leading_slash_only_once() -> None:
    """The leading "/" Docker adds to names is stripped."""
    doc = {"Name": "/web"}

    meta = convert_inspect(doc)

    assert meta.docker_name == "web"


def test_null_labels_become_empty() -> None:
    """Config.Labels null becomes an empty mapping."""
    doc = {"Config": {"Labels": None}}

    meta = convert_inspect(doc)

    assert meta.labels == {}


def test_mount_without_destination_is_skipped() -> None:
    """A mount that names no destination is left out, the others kept."""
    doc = {"Mounts": [{"Source": "/x"}, None, {"Destination": "/d", "RW": True}]}

    meta = convert_inspect(doc)

    assert meta.volumes == [VolumeMount(destination="/d", read_only=False)]


# --- times ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T19:21:46.292013277Z", datetime(2026, 12, 3, 19, 21, 46, 292013)),
        ("2026-12-03T19:21:47.40892486Z", datetime(2026, 12, 3, 19, 21, 47, 408924)),
        ("2026-12-03T19:21:47.4Z", datetime(2026, 12, 3, 19, 21, 47, 400000)),
        ("2026-12-03T19:21:47Z", datetime(2026, 12, 3, 19, 21, 47)),
        ("2026-12-03T21:21:47.5+02:00", datetime(2026, 12, 3, 19, 21, 47, 500000)),
    ],
)
def test_docker_times_parse_to_aware_utc(text: str, expected: datetime) -> None:
    """Nanosecond RFC 3339 times truncate to microseconds, in UTC."""
    parsed = parse_docker_time(text)

    assert parsed == expected.replace(tzinfo=UTC)
    assert parsed is not None
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00.000000000Z",
        "0001-01-01T00:00:00+01:00",
        "",
        "yesterday",
        "2024-13-01T00:00:00Z",
        "2024-01-01T00:00:00",
        None,
        0,
        [],
    ],
)
def test_zero_time_and_junk_are_none(value: Any) -> None:
    """Docker's zero time and anything unparseable mean "never"."""
    parsed = parse_docker_time(value)

    assert parsed is None


@given(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)))
def test_nanosecond_times_round_trip_to_microseconds(moment: datetime) -> None:
    """A time written with nine fractional digits parses back exactly."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z"

    parsed = parse_docker_time(text)

    assert parsed == moment


# --- merge_previous -------------------------------------------------------


def test_stopped_container_keeps_previous_bindings() -> None:
    """Bindings seen while running survive Docker clearing them on stop."""
    previous = convert_inspect(load("running"))
    stopped = convert_inspect(load("stopped"))

    merged = merge_previous(stopped, previous)

    assert merged.port_bindings == previous.port_bindings
    assert merged.exit_code == 137
    assert stopped.port_bindings == []


def test_running_container_does_not_inherit_bindings() -> None:
    """A running container's bindings are what Docker says now."""
    previous = convert_inspect(load("published"))
    now = ContainerMetadata(docker_id="abc", running=True)

    merged = merge_previous(now, previous)

    assert merged.port_bindings == []


def test_new_bindings_win_over_previous() -> None:
    """A stopped container that still shows bindings keeps its own."""
    previous = ContainerMetadata(port_bindings=[binding(1, 1)])
    now = ContainerMetadata(port_bindings=[binding(2, 2)])

    merged = merge_previous(now, previous)

    assert merged.port_bindings == [binding(2, 2)]


def test_no_previous_returns_new_unchanged() -> None:
    """Without previous metadata the new metadata stands."""
    now = convert_inspect(load("stopped"))

    merged = merge_previous(now, None)

    assert merged == now


# --- never raises ---------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
# Keys inspect documents actually use, so random documents reach deep code.
inspect_keys = st.sampled_from(
    ["Id", "Name", "State", "Running", "OOMKilled", "ExitCode", "Error",
     "FinishedAt", "NetworkSettings", "Ports", "HostPort", "HostIp",
     "Mounts", "RW", "Config", "Labels", "Health", "Status", "80/tcp"]
)  # fmt: skip
inspect_like = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(inspect_keys | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)
DELETE = object()


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    found = [prefix] if prefix else []
    children: list[tuple[Any, Any]]
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    else:
        return found
    for key, child in children:
        found.extend(paths_of(child, (*prefix, key)))
    return found


def mutate(doc: Any, path: tuple[Any, ...], replacement: Any) -> None:
    """Replace (or delete) the value at path, in place."""
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if replacement is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement


def assert_converts(doc: Any) -> None:
    meta = convert_inspect(doc)

    assert isinstance(meta, ContainerMetadata)
    meta.model_dump_json()


@given(json_values)
def test_any_json_value_never_raises(doc: Any) -> None:
    """Any JSON value, even a non-object, converts without raising."""
    assert_converts(doc)


@given(st.dictionaries(inspect_keys, inspect_like, max_size=8))
def test_any_inspect_like_document_never_raises(doc: dict[str, Any]) -> None:
    """Documents built from inspect's own keys convert without raising."""
    assert_converts(doc)


@given(
    name=st.sampled_from(FIXTURE_NAMES),
    mutations=st.lists(
        st.tuples(st.integers(min_value=0), st.just(DELETE) | json_values),
        min_size=1,
        max_size=5,
    ),
)
def test_mutated_real_documents_never_raise(
    name: str, mutations: list[tuple[int, Any]]
) -> None:
    """A real document with values replaced or deleted converts anyway."""
    doc = copy.deepcopy(load(name))
    for index, replacement in mutations:
        paths = paths_of(doc)
        if paths:
            mutate(doc, paths[index % len(paths)], replacement)

    assert_converts(doc)


@given(inspect_like)
def test_any_ports_value_never_raises(ports: Any) -> None:
    """parse_port_bindings answers for any value, sorted, ports in range."""
    bindings, _ = parse_port_bindings(ports)

    assert bindings == sorted(
        bindings,
        key=lambda b: (b.container_port, b.protocol, b.host_ip, b.host_port),
    )
    assert all(0 < b.host_port <= 65535 for b in bindings)
