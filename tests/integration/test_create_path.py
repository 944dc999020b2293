"""The create path on the real engine: one test per acceptance point of #2.

Each test drives berth through its HTTP API on a fresh SQLite file and
checks what the engine holds with a docker-py client of its own.
"""

from __future__ import annotations

import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
from fastapi.testclient import TestClient

from app.config import Settings
from app.service.labels import HOST_ID
from tests.support.tasks import (
    ECS_LABELS,
    LABEL_PREFIX,
    container,
    create,
    engine_containers,
    path,
    register,
    task_body,
)

DOCKER_ID = re.compile(r"[0-9a-f]{64}")
MIB = 1024 * 1024


def rows(settings: Settings) -> dict[str, dict[str, Any]]:
    """The containers table as stored, read past berth, by container name."""
    database = settings.resolved_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM containers").fetchall()
    return {row["name"]: dict(row) for row in found}


def linked_task() -> dict[str, Any]:
    """``app.v1_x`` links to ``db`` under the alias ``database``."""
    return task_body(
        container("db"),
        container("app.v1_x", links=["db:database"], memory_mib=64),
    )


def test_register_is_201_then_200_then_409_for_another_spec(
    client: TestClient,
) -> None:
    """A task registers once; the same body is 200, another spec 409."""
    body = linked_task()
    changed = {**body, "containers": [container("db"), container("other")]}

    first = client.post("/v1/tasks", json=body)
    again = client.post("/v1/tasks", json=body)
    conflict = client.post("/v1/tasks", json=changed)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert [c["name"] for c in first.json()["containers"]] == ["db", "app.v1_x"]
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["error_name"] == "TaskConflictError"
    assert conflict.json()["status"] == 409


def test_the_same_task_with_its_defaults_spelled_out_is_the_same_task(
    client: TestClient,
) -> None:
    """Registering again with the cluster berth answered (and other defaults
    written out) is 200 with the same ID; another cluster is 409."""
    body = linked_task()
    first = client.post("/v1/tasks", json=body)
    cluster = first.json()["cluster"]
    spelled = {**body, "cluster": cluster, "network_mode": "bridge"}

    again = client.post("/v1/tasks", json=spelled)
    elsewhere = client.post("/v1/tasks", json={**body, "cluster": cluster + "-x"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert elsewhere.status_code == 409


def test_a_link_to_an_uncreated_sibling_stores_and_creates_nothing(
    client: TestClient,
    settings: Settings,
    docker_api: docker.APIClient,
) -> None:
    """DependencyNotCreatedError: no name stored, no engine container."""
    body = linked_task()
    task_id = register(client, body)

    answer = client.post(path(task_id, "app.v1_x", "create"))

    assert answer.status_code == 409
    assert answer.json()["error_name"] == "DependencyNotCreatedError"
    stored = rows(settings)
    assert stored["app.v1_x"]["docker_name"] is None
    assert stored["app.v1_x"]["docker_id"] is None
    assert stored["app.v1_x"]["status"] == "NONE"
    assert stored["db"]["docker_name"] is None
    assert engine_containers(docker_api, body["arn"]) == []


def test_create_names_the_container_and_is_idempotent(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """201 with an ECS-style name and a Docker ID; again 200, the same ID."""
    body = linked_task()
    task_id = register(client, body)

    create(client, task_id, "db")
    first = client.post(path(task_id, "app.v1_x", "create"))
    again = client.post(path(task_id, "app.v1_x", "create"))

    assert first.status_code == 201
    assert again.status_code == 200
    view = first.json()
    assert re.fullmatch(r"ecs-web-3-appv1x-[0-9a-f]{20}", view["docker_name"])
    assert DOCKER_ID.fullmatch(view["docker_id"])
    assert view["status"] == "CREATED"
    assert again.json()["docker_id"] == view["docker_id"]
    assert again.json()["docker_name"] == view["docker_name"]
    assert len(engine_containers(docker_api, body["arn"], "app.v1_x")) == 1


def test_whole_task_create_makes_one_container_each(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """Task create twice: dependencies first, one engine container per row."""
    body = linked_task()
    task_id = register(client, body)

    first = client.post(f"/v1/tasks/{task_id}/create")
    again = client.post(f"/v1/tasks/{task_id}/create")

    assert first.status_code == 200
    ids = {c["name"]: c["docker_id"] for c in first.json()["containers"]}
    assert all(DOCKER_ID.fullmatch(i) for i in ids.values())
    assert {c["name"]: c["docker_id"] for c in again.json()["containers"]} == ids
    for name in ("db", "app.v1_x"):
        listed = engine_containers(docker_api, body["arn"], name)
        assert [c["Id"] for c in listed] == [ids[name]]


def test_docker_config_shm_size_with_null_labels_keeps_every_label(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """ShmSize from docker_config reaches the engine; ``Labels: null`` does
    not cost the ownership labels."""
    docker_config = {"host_config": {"ShmSize": 64 * MIB}, "config": {"Labels": None}}
    body = task_body(container("shm", docker_config=docker_config))
    task_id = register(client, body)

    view = create(client, task_id, "shm")

    inspected = docker_api.inspect_container(view["docker_id"])
    labels = inspected["Config"]["Labels"]
    assert inspected["HostConfig"]["ShmSize"] == 64 * MIB
    assert all(LABEL_PREFIX + key in labels for key in ECS_LABELS)
    assert labels[LABEL_PREFIX + "task-arn"] == body["arn"]


def test_the_engine_holds_labels_limits_network_and_links(
    client: TestClient, settings: Settings, docker_api: docker.APIClient
) -> None:
    """Our labels win, the user's others stay, memory set, bridge, link alias."""
    user_labels = {LABEL_PREFIX + "task-arn": "arn:not-this-task", "team": "pay"}
    body = task_body(
        container("db"),
        container(
            "app.v1_x",
            links=["db:database"],
            memory_mib=64,
            docker_labels=user_labels,
        ),
    )
    task_id = register(client, body)

    db = create(client, task_id, "db")
    app = create(client, task_id, "app.v1_x")

    inspected = docker_api.inspect_container(app["docker_id"])
    labels = inspected["Config"]["Labels"]
    host = inspected["HostConfig"]
    assert labels[LABEL_PREFIX + "task-arn"] == body["arn"]
    assert labels[LABEL_PREFIX + "container-name"] == "app.v1_x"
    assert labels[LABEL_PREFIX + "task-definition-family"] == "web"
    assert labels[LABEL_PREFIX + "task-definition-version"] == "3"
    assert labels[LABEL_PREFIX + "cluster"] == settings.cluster
    assert labels[HOST_ID] == settings.host_id
    assert labels["team"] == "pay"
    assert host["Memory"] == 64 * MIB
    assert host["NetworkMode"] == "bridge"
    assert host["Links"] == [f"/{db['docker_name']}:/{app['docker_name']}/database"]
    assert app["labels"] == labels


def test_a_docker_id_names_its_owning_task_and_container(
    client: TestClient,
) -> None:
    """GET /v1/containers/{id or name} answers with the task and container."""
    body = task_body(container("solo"))
    task_id = register(client, body)
    view = create(client, task_id, "solo")

    by_id = client.get(f"/v1/containers/{view['docker_id']}")
    by_name = client.get(f"/v1/containers/{view['docker_name']}")
    unknown = client.get(f"/v1/containers/{'0' * 64}")

    assert by_id.status_code == 200
    assert by_id.json()["task_id"] == task_id
    assert by_id.json()["task_arn"] == body["arn"]
    assert by_id.json()["container_name"] == "solo"
    assert by_id.json()["docker_name"] == view["docker_name"]
    assert by_name.json() == by_id.json()
    assert unknown.status_code == 404
    assert unknown.json()["error_name"] == "ContainerNotFoundError"


def test_docker_api_version_1_30_creates(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """An old but supported API version creates the container."""
    body = task_body(container("old", docker_api_version="1.30"))
    task_id = register(client, body)

    view = create(client, task_id, "old")

    assert DOCKER_ID.fullmatch(view["docker_id"])
    assert len(engine_containers(docker_api, body["arn"], "old")) == 1


def test_docker_api_version_above_the_engine_stores_nothing(
    client: TestClient, settings: Settings, docker_api: docker.APIClient
) -> None:
    """1.99 is UnsupportedDockerAPIVersionError; no name, no container."""
    body = task_body(container("new", docker_api_version="1.99"))
    task_id = register(client, body)

    answer = client.post(path(task_id, "new", "create"))

    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["error_name"] == "UnsupportedDockerAPIVersionError"
    stored = rows(settings)["new"]
    assert (stored["docker_name"], stored["docker_id"]) == (None, None)
    assert stored["status"] == "NONE"
    assert engine_containers(docker_api, body["arn"]) == []


def test_concurrent_creates_make_one_container(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """Eight creates at once: one 201, seven 200, one engine container."""
    body = task_body(container("racy"))
    task_id = register(client, body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: client.post(path(task_id, "racy", "create")), range(8))
        )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 7 + [201]
    assert len({a.json()["docker_id"] for a in answers}) == 1
    assert len(engine_containers(docker_api, body["arn"], "racy")) == 1


def test_a_configuration_the_engine_refuses_is_422_with_its_message(
    client: TestClient, settings: Settings, docker_api: docker.APIClient
) -> None:
    """Refused configurations are 422 with the engine's words; the name stays
    stored for a retry and nothing is created."""
    body = task_body(
        container("tiny", docker_config={"host_config": {"Memory": 1024}}),
        container("typed", docker_config={"config": {"Labels": {"n": 1}}}),
    )
    task_id = register(client, body)

    tiny = client.post(path(task_id, "tiny", "create"))
    typed = client.post(path(task_id, "typed", "create"))

    for answer in (tiny, typed):
        assert answer.status_code == 422
        assert answer.json()["error_name"] == "CannotCreateContainerError"
    assert "memory" in tiny.json()["detail"].lower()
    assert "cannot unmarshal" in typed.json()["detail"]
    stored = rows(settings)
    assert stored["tiny"]["docker_name"] is not None
    assert stored["tiny"]["docker_id"] is None
    assert stored["tiny"]["error_name"] == "CannotCreateContainerError"
    assert engine_containers(docker_api, body["arn"]) == []
