"""After create: start, exit codes, published ports, OOM, stop and removal."""

from __future__ import annotations

import socket

import docker
from fastapi.testclient import TestClient

from tests.support.tasks import (
    container,
    create,
    engine_containers,
    path,
    register,
    task_body,
    wait_for,
)


def test_a_container_that_exits_3_is_stopped_with_exit_code_3(
    client: TestClient,
) -> None:
    """exit 3 → STOPPED, exit_code 3, no error."""
    task_id = register(client, task_body(container("quits", "sh", "-c", "exit 3")))

    started = client.post(path(task_id, "quits", "start"))
    view = wait_for(client, task_id, "quits", lambda v: v["status"] == "STOPPED")

    assert started.status_code == 200
    assert view["status"] == "STOPPED"
    assert view["exit_code"] == 3
    assert view["error"] is None
    assert view["finished_at"] is not None


def test_a_running_container_has_no_exit_code_and_its_ephemeral_port(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """RUNNING, exit_code null, and the engine-chosen host port converted."""
    ports = [{"container_port": 8080}]
    body = task_body(container("web", port_mappings=ports))
    task_id = register(client, body)

    view = client.post(path(task_id, "web", "start")).json()

    assert view["status"] == "RUNNING"
    assert view["exit_code"] is None
    published = [p for p in view["port_bindings"] if p["container_port"] == 8080]
    assert published
    assert all(p["host_port"] > 0 and p["protocol"] == "tcp" for p in published)
    engine_ports = docker_api.port(view["docker_id"], 8080)
    assert {int(p["HostPort"]) for p in engine_ports} == {
        p["host_port"] for p in published
    }


def test_a_container_killed_at_its_memory_limit_is_out_of_memory(
    client: TestClient,
) -> None:
    """Over a 6 MiB limit: STOPPED, oom_killed, error OutOfMemoryError."""
    hog = container("hog", "sh", "-c", "head -c 200m /dev/zero | tail", memory_mib=6)
    task_id = register(client, task_body(hog))

    client.post(path(task_id, "hog", "start"))
    view = wait_for(client, task_id, "hog", lambda v: v["status"] == "STOPPED")

    assert view["status"] == "STOPPED"
    assert view["oom_killed"] is True
    assert view["error"]["name"] == "OutOfMemoryError"


def test_start_creates_first_when_needed(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """Start on a container never created creates it, once, and runs it."""
    body = task_body(container("lazy"))
    task_id = register(client, body)

    view = client.post(path(task_id, "lazy", "start")).json()

    assert view["status"] == "RUNNING"
    assert [c["Id"] for c in engine_containers(docker_api, body["arn"])] == [
        view["docker_id"]
    ]


def test_stop_then_remove(client: TestClient, docker_api: docker.APIClient) -> None:
    """Stop says STOPPED; remove takes it off the engine; stop then is 409."""
    body = task_body(container("svc"))
    task_id = register(client, body)
    client.post(path(task_id, "svc", "start"))

    stopped = client.post(path(task_id, "svc", "stop"), params={"timeout": 1})
    removed = client.delete(path(task_id, "svc"))
    stop_again = client.post(path(task_id, "svc", "stop"))

    assert stopped.status_code == 200
    assert stopped.json()["status"] == "STOPPED"
    assert stopped.json()["exit_code"] is not None
    assert removed.status_code == 200
    assert removed.json()["status"] == "REMOVED"
    assert engine_containers(docker_api, body["arn"]) == []
    assert stop_again.status_code == 409
    assert stop_again.json()["error_name"] == "ContainerStateError"


def test_stop_before_create_is_a_state_conflict(client: TestClient) -> None:
    """Nothing to stop yet: 409 ContainerStateError."""
    task_id = register(client, task_body(container("idle")))

    answer = client.post(path(task_id, "idle", "stop"))

    assert answer.status_code == 409
    assert answer.json()["error_name"] == "ContainerStateError"


def test_start_after_remove_makes_a_new_container(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """A removed container starts again as a fresh one with a fresh name."""
    body = task_body(container("again"))
    task_id = register(client, body)
    first = create(client, task_id, "again")
    client.delete(path(task_id, "again"))

    view = client.post(path(task_id, "again", "start"))

    assert view.status_code == 200, view.text
    assert view.json()["status"] == "RUNNING"
    assert view.json()["docker_id"] != first["docker_id"]
    listed = engine_containers(docker_api, body["arn"])
    assert [c["Id"] for c in listed] == [view.json()["docker_id"]]


def test_delete_task_removes_every_container_and_the_task(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """DELETE of a task: 204, nothing left on the engine, the task is gone."""
    body = task_body(
        container("db"), container("app", links=["db"]), container("never")
    )
    task_id = register(client, body)
    client.post(path(task_id, "db", "start"))
    client.post(path(task_id, "app", "start"))

    deleted = client.delete(f"/v1/tasks/{task_id}", params={"timeout": 1})

    assert deleted.status_code == 204
    assert engine_containers(docker_api, body["arn"]) == []
    gone = client.get(f"/v1/tasks/{task_id}")
    assert gone.status_code == 404
    assert gone.json()["error_name"] == "TaskNotFoundError"


def test_unknown_task_and_container_are_404(client: TestClient) -> None:
    """Unknown task and unknown container name answer 404 problem+json."""
    task_id = register(client, task_body(container("only")))

    no_task = client.post(path("f" * 32, "only", "create"))
    no_container = client.post(path(task_id, "nope", "create"))

    assert no_task.status_code == 404
    assert no_task.json()["error_name"] == "TaskNotFoundError"
    assert no_container.status_code == 404
    assert no_container.json()["error_name"] == "ContainerNotFoundError"


def test_starting_a_container_whose_link_target_is_stopped_is_a_conflict(
    client: TestClient,
) -> None:
    """The engine will not link to a container that is not running: 409
    ContainerStateError, which a start of the target resolves, not a 502."""
    db = container("db")
    web = container("web", links=["db"])
    task_id = register(client, task_body(db, web))
    assert client.post(f"/v1/tasks/{task_id}/create").status_code == 200

    answer = client.post(path(task_id, "web", "start"))

    assert answer.status_code == 409, answer.text
    assert answer.json()["error_name"] == "ContainerStateError"
    assert "non running" in answer.json()["detail"]
    assert client.post(path(task_id, "db", "start")).status_code == 200
    assert client.post(path(task_id, "web", "start")).json()["status"] == "RUNNING"


def test_a_host_port_another_container_holds_is_a_conflict(
    client: TestClient,
) -> None:
    """Two tasks asking for one fixed host port: the second start is 409
    ContainerStateError with the engine's message, not an engine failure."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mapping = [{"container_port": 8080, "host_port": port, "host_ip": "127.0.0.1"}]
    first = register(client, task_body(container("one", port_mappings=mapping)))
    second = register(client, task_body(container("two", port_mappings=mapping)))
    assert client.post(path(first, "one", "start")).status_code == 200

    answer = client.post(path(second, "two", "start"))

    assert answer.status_code == 409, answer.text
    assert answer.json()["error_name"] == "ContainerStateError"
    assert str(port) in answer.json()["detail"]
