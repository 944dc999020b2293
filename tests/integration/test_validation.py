"""Malformed input: a clear problem+json answer, and nothing left behind."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import TEST_IMAGE, unique_arn
from tests.support.problem import assert_problem
from tests.support.server import BerthServer

MIB = 1024 * 1024


def task(arn: str, *containers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "arn": arn,
        "family": "validation",
        "version": "1",
        "containers": list(containers) or [container("main")],
        **fields,
    }


def container(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": TEST_IMAGE, **fields}


Body = Callable[[str], dict[str, Any]]

INVALID: dict[str, Body] = {
    "negative memory": lambda a: task(a, container("m", memory_mib=-1)),
    "port 70000": lambda a: task(
        a, container("m", port_mappings=[{"container_port": 70000}])
    ),
    "protocol icmp": lambda a: task(
        a,
        container("m", port_mappings=[{"container_port": 80, "protocol": "icmp"}]),
    ),
    "newline in a name": lambda a: task(a, container("bad\nname")),
    "duplicate names": lambda a: task(a, container("m"), container("m")),
    "link to an unknown container": lambda a: task(a, container("m", links=["ghost"])),
    "link and volumes-from cycle": lambda a: task(
        a,
        container("a", links=["b"]),
        container("b", volumes_from=[{"source_container": "a"}]),
    ),
    "no containers": lambda a: {**task(a), "containers": []},
    "empty image": lambda a: task(a, {"name": "m", "image": ""}),
    "unknown network mode": lambda a: task(a, network_mode="overlay"),
    "bad docker_api_version": lambda a: task(
        a, container("m", docker_api_version="latest")
    ),
    "mount of an undeclared volume": lambda a: task(
        a,
        container(
            "m", mount_points=[{"source_volume": "ghost", "container_path": "/d"}]
        ),
    ),
    "unknown field": lambda a: task(a, container("m", priviliged=True)),
    "slash in a name": lambda a: task(a, container("web/app")),
    "colon in a name": lambda a: task(a, container("web:app")),
    "dot-dot name": lambda a: task(a, container("..")),
    "colon in a mount path": lambda a: task(
        a,
        container("m", mount_points=[{"source_volume": "v", "container_path": "/a:b"}]),
        volumes=[{"name": "v"}],
    ),
    "colon in a host path": lambda a: task(
        a,
        container("m", mount_points=[{"source_volume": "v", "container_path": "/d"}]),
        volumes=[{"name": "v", "host_path": "/srv/a:b"}],
    ),
}


def registered(client: TestClient, arn: str) -> int:
    page = client.get("/v1/tasks", params={"arn": arn}).json()
    total: int = page["total"]
    return total


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_task_is_refused_and_not_registered(
    client: TestClient, case: str
) -> None:
    """Each invalid task answers 422 problem+json, and is not registered."""
    arn = unique_arn()

    response = client.post("/v1/tasks", json=INVALID[case](arn))

    body = assert_problem(response, 422, "ValidationError")
    assert body["errors"], body
    assert registered(client, arn) == 0


def test_validation_error_points_at_the_field(client: TestClient) -> None:
    """The answer says which field is wrong, in ``errors`` and ``detail``."""
    body = task(unique_arn(), container("m", memory_mib=-1))

    problem = client.post("/v1/tasks", json=body).json()

    assert problem["errors"][0]["loc"] == ["body", "containers", "0", "memory_mib"]
    assert "memory_mib" in problem["detail"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"arn": "x", "family": ', "application/json"),
        (b"", "application/json"),
        (b"[]", "application/json"),
        (b"null", "application/json"),
        (b'"a string"', "application/json"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_malformed_body_is_a_problem(
    client: TestClient, content: bytes, content_type: str
) -> None:
    """Broken JSON is a 4xx problem+json, never a crash."""
    response = client.post(
        "/v1/tasks", content=content, headers={"content-type": content_type}
    )

    assert_problem(response, (400, 422), "ValidationError")


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "text/plain"},
        {},
    ],
)
def test_a_body_not_declared_json_is_415_saying_so(
    client: TestClient, headers: dict[str, str]
) -> None:
    """A valid task sent as form data (curl -d's default) or without a type
    is 415 UnsupportedMediaTypeError naming the header to send, and is not
    registered."""
    arn = unique_arn("form")
    body = json.dumps(task(arn)).encode()

    response = client.post("/v1/tasks", content=body, headers=headers)

    problem = assert_problem(response, 415, "UnsupportedMediaTypeError")
    assert "Content-Type: application/json" in problem["detail"]
    assert client.get("/v1/tasks", params={"arn": arn}).json()["total"] == 0
    declared = {"content-type": "application/json; charset=utf-8"}
    assert client.post("/v1/tasks", content=body, headers=declared).status_code == 201


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


def test_large_body_is_refused_in_process(client: TestClient) -> None:
    """3 MiB, declared or chunked, answers 413 problem+json."""
    declared = client.post(
        "/v1/tasks",
        content=b" " * (3 * MIB),
        headers={"content-type": "application/json"},
    )
    chunked = client.post(
        "/v1/tasks",
        content=_chunks(3 * MIB),
        headers={"content-type": "application/json"},
    )

    assert_problem(declared, 413, "RequestTooLargeError")
    assert_problem(chunked, 413, "RequestTooLargeError")


def test_large_body_is_refused_by_the_server(
    settings: Settings, tmp_path: Path
) -> None:
    """Over a real socket too: 413 for a declared and a chunked 3 MiB body."""
    server = BerthServer(
        {
            "BERTH_DATABASE_URL": settings.resolved_database_url,
            "BERTH_HOST_ID": settings.host_id,
            "BERTH_EVENTS": "false",
        },
        tmp_path / "berth.log",
    ).start()
    try:
        with server.client() as http:
            declared = http.post(
                "/v1/tasks",
                content=b" " * (3 * MIB),
                headers={"content-type": "application/json"},
            )
            chunked = http.post(
                "/v1/tasks",
                content=_chunks(3 * MIB),
                headers={"content-type": "application/json"},
            )
            alive = http.get("/healthz")
    finally:
        server.stop()

    assert_problem(declared, 413, "RequestTooLargeError")
    assert_problem(chunked, 413, "RequestTooLargeError")
    assert alive.status_code == 200


def test_body_under_the_limit_is_read(client: TestClient) -> None:
    """A large but allowed body is read whole and judged on its content."""
    padding = {f"K{i}": "v" * 1000 for i in range(500)}
    body = task(unique_arn(), container("m", environment=padding))

    response = client.post("/v1/tasks", json=body)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "path", "status", "name"),
    [
        ("GET", "/nowhere", 404, "NotFoundError"),
        ("GET", "/v1/nowhere", 404, "NotFoundError"),
        ("GET", "/v1/tasks/0123456789abcdef", 404, "TaskNotFoundError"),
        ("GET", "/v1/tasks/0123/containers/x", 404, "TaskNotFoundError"),
        ("GET", "/v1/containers/no-such-container", 404, "ContainerNotFoundError"),
        ("PUT", "/v1/tasks", 405, "MethodNotAllowedError"),
        ("DELETE", "/healthz", 405, "MethodNotAllowedError"),
        ("GET", "/v1/tasks?limit=0", 422, "ValidationError"),
        ("POST", "/v1/tasks/x/containers/y/stop?timeout=-1", 422, "ValidationError"),
    ],
)
def test_routing_errors_are_problems(
    client: TestClient, method: str, path: str, status: int, name: str
) -> None:
    """Unknown paths, wrong methods and bad parameters are problem+json."""
    response = client.request(method, path)

    assert_problem(response, status, name)


def test_unknown_container_of_a_task_is_a_problem(client: TestClient) -> None:
    """A task's unknown container is 404 ContainerNotFoundError."""
    created = client.post("/v1/tasks", json=task(unique_arn())).json()

    response = client.post(f"/v1/tasks/{created['id']}/containers/ghost/create")

    assert_problem(response, 404, "ContainerNotFoundError")


MISSING_IMAGE = "berth-test/does-not-exist:latest"


def _create_missing(client: TestClient, image: str, **fields: Any) -> Any:
    spec = task(unique_arn(), {"name": "m", "image": image, **fields})
    created = client.post("/v1/tasks", json=spec).json()
    started = time.monotonic()
    response = client.post(f"/v1/tasks/{created['id']}/containers/m/create")
    elapsed = time.monotonic() - started
    row = client.get(f"/v1/tasks/{created['id']}/containers/m").json()
    return response, elapsed, row


def test_missing_image_without_pull_is_a_named_4xx(client: TestClient) -> None:
    """pull_policy never: 422 ImageNotFoundError, and no container made."""
    response, _, row = _create_missing(client, MISSING_IMAGE, pull_policy="never")

    assert_problem(response, 422, "ImageNotFoundError")
    assert row["docker_id"] is None
    assert row["error"]["name"] == "ImageNotFoundError"


def test_missing_image_with_failed_pull_is_a_named_4xx(client: TestClient) -> None:
    """The default pull cannot reach a registry: 422 ImageNotFoundError, fast."""
    response, elapsed, row = _create_missing(client, MISSING_IMAGE)

    assert_problem(response, 422, "ImageNotFoundError")
    assert elapsed < 30
    assert row["docker_id"] is None


def _registered(client: TestClient, *containers: dict[str, Any]) -> str:
    created = client.post("/v1/tasks", json=task(unique_arn(), *containers))
    assert created.status_code == 201, created.text
    task_id: str = created.json()["id"]
    return task_id


@pytest.mark.parametrize(
    "fields",
    [{"command": ["no-such-command"]}, {"user": "nosuchuser", "command": ["true"]}],
    ids=["command", "user"],
)
def test_start_refused_for_the_containers_own_config_is_4xx(
    client: TestClient, fields: dict[str, Any]
) -> None:
    """A command or user the image lacks is 422, not an engine failure."""
    task_id = _registered(client, container("m", **fields))

    response = client.post(f"/v1/tasks/{task_id}/containers/m/start")

    assert_problem(response, 422, "CannotStartContainerError")


def test_stop_of_a_removed_container_is_a_state_error(client: TestClient) -> None:
    """Stopping a container whose Docker container is gone is 409."""
    task_id = _registered(client, container("m", command=["sleep", "30"]))
    base = f"/v1/tasks/{task_id}/containers/m"
    client.post(base + "/create")
    client.delete(base)

    response = client.post(base + "/stop", params={"timeout": 0})

    assert_problem(response, 409, "ContainerStateError")


def test_stop_after_removal_behind_berths_back_is_a_state_error(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """A container removed on the engine directly is 409, and marked REMOVED."""
    task_id = _registered(client, container("m", command=["sleep", "30"]))
    base = f"/v1/tasks/{task_id}/containers/m"
    docker_id = client.post(base + "/create").json()["docker_id"]
    docker_api.remove_container(docker_id, force=True)

    response = client.post(base + "/stop", params={"timeout": 0})

    assert_problem(response, 409, "ContainerStateError")
    assert client.get(base).json()["status"] == "REMOVED"


def test_start_of_a_removed_container_creates_it_again(client: TestClient) -> None:
    """Start after remove makes a new Docker container and runs it."""
    task_id = _registered(client, container("m", command=["sleep", "30"]))
    base = f"/v1/tasks/{task_id}/containers/m"
    first = client.post(base + "/create").json()
    client.delete(base)

    started = client.post(base + "/start")

    assert started.status_code == 200, started.text
    assert started.json()["status"] == "RUNNING"
    assert started.json()["docker_id"] != first["docker_id"]
    assert started.json()["docker_name"] != first["docker_name"]


def test_a_long_identifier_is_not_repeated_whole(client: TestClient) -> None:
    """A 404 names what was asked for, cut short: a 5,000-character name is
    not sent back to the caller or written in full into the answer."""
    task_id = client.post("/v1/tasks", json=task(unique_arn("long"))).json()["id"]
    name = "n" * 5000

    response = client.get(f"/v1/tasks/{task_id}/containers/{name}")
    owner = client.get(f"/v1/containers/{name}")

    for answer in (response, owner):
        problem = assert_problem(answer, 404, "ContainerNotFoundError")
        assert "n" * 64 + "…" in problem["detail"]
        assert len(problem["detail"]) < 200


def test_a_docker_config_nested_too_deep_is_refused(client: TestClient) -> None:
    """A docker_config 300 levels deep is 422 ValidationError, not a crash
    of whatever walks it, and is not registered."""
    arn = unique_arn("deep")
    deep: list[Any] = []
    for _ in range(300):
        deep = [deep]
    body = task(arn, container("m", docker_config={"host_config": {"X": deep}}))

    response = client.post("/v1/tasks", json=body)

    assert_problem(response, 422, "ValidationError")
    assert client.get("/v1/tasks", params={"arn": arn}).json()["total"] == 0
