"""The create path in one breath: register, create, start, read, delete."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TEST_IMAGE, unique_arn


def test_register_create_start_delete(client: TestClient) -> None:
    """A registered container is created, started, read back and deleted."""
    body = {
        "arn": unique_arn(),
        "family": "smoke",
        "version": "1",
        "containers": [
            {"name": "main", "image": TEST_IMAGE, "command": ["sleep", "30"]}
        ],
    }

    task = client.post("/v1/tasks", json=body).json()
    created = client.post(f"/v1/tasks/{task['id']}/containers/main/create")
    started = client.post(f"/v1/tasks/{task['id']}/containers/main/start")
    deleted = client.delete(f"/v1/tasks/{task['id']}", params={"timeout": 0})

    assert created.status_code == 201
    assert started.json()["status"] == "RUNNING"
    assert deleted.status_code == 204
    assert client.get(f"/v1/tasks/{task['id']}").status_code == 404
