"""Task volumes, mount points and volumes-from on the real engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import remove_labelled
from tests.support.tasks import container, create, path, register, task_body, wait_for


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    return folder


@pytest.fixture
def settings(settings: Settings, shared_dir: Path) -> Settings:
    """The suite's settings with the test's own folder allowed as a bind."""
    return settings.model_copy(update={"allowed_host_paths": [str(shared_dir)]})


@pytest.fixture
def task_ids(docker_api: docker.APIClient, host_id: str) -> Iterator[list[str]]:
    """Task IDs whose volumes are removed after the test, pass or fail."""
    ids: list[str] = []
    yield ids
    remove_labelled(docker_api, host_id)
    for task_id in ids:
        for name in volume_names(docker_api, task_id):
            docker_api.remove_volume(name, force=True)


def volume_names(docker_api: docker.APIClient, task_id: str) -> list[str]:
    found = docker_api.volumes(filters={"name": f"berth-{task_id}-"})
    return [v["Name"] for v in found.get("Volumes") or []]


def test_mount_points_reach_host_paths_and_task_volumes(
    client: TestClient,
    docker_api: docker.APIClient,
    shared_dir: Path,
    task_ids: list[str],
) -> None:
    """A host-path volume binds the folder; another is a per-task volume;
    a reader sees both through volumes-from, read-only."""
    writer = container(
        "writer",
        "sh",
        "-c",
        "echo host > /host/out && echo vol > /vol/out",
        mount_points=[
            {"source_volume": "host", "container_path": "/host"},
            {"source_volume": "scratch", "container_path": "/vol"},
        ],
    )
    reader = container(
        "reader",
        "sh",
        "-c",
        "cat /vol/out && ! touch /vol/other",
        volumes_from=[{"source_container": "writer", "read_only": True}],
    )
    body = task_body(writer, reader)
    body["volumes"] = [
        {"name": "host", "host_path": str(shared_dir)},
        {"name": "scratch"},
    ]
    task_id = register(client, body)
    task_ids.append(task_id)

    client.post(path(task_id, "writer", "start"))
    wrote = wait_for(client, task_id, "writer", lambda v: v["status"] == "STOPPED")
    client.post(path(task_id, "reader", "start"))
    read = wait_for(client, task_id, "reader", lambda v: v["status"] == "STOPPED")

    assert wrote["exit_code"] == 0
    assert read["exit_code"] == 0
    assert (shared_dir / "out").read_text() == "host\n"
    mounts = {m["destination"]: m for m in wrote["volumes"]}
    assert mounts["/host"]["type"] == "bind"
    assert mounts["/host"]["source"] == str(shared_dir)
    assert mounts["/vol"]["type"] == "volume"
    assert mounts["/vol"]["name"] in volume_names(docker_api, task_id)
    reader_mounts = {m["destination"]: m for m in read["volumes"]}
    assert reader_mounts["/vol"]["read_only"] is True

    client.delete(f"/v1/tasks/{task_id}", params={"timeout": 0})
    assert volume_names(docker_api, task_id) == []


def test_removing_a_container_takes_its_anonymous_volumes(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """An anonymous volume (from docker_config) goes with its container."""
    body = task_body(
        container("anon", docker_config={"config": {"Volumes": {"/a": {}}}})
    )
    task_id = register(client, body)
    view = create(client, task_id, "anon")
    anonymous = [
        m["Name"]
        for m in docker_api.inspect_container(view["docker_id"])["Mounts"]
        if m["Destination"] == "/a"
    ]

    client.delete(path(task_id, "anon"))

    assert len(anonymous) == 1
    with pytest.raises(docker.errors.NotFound):
        docker_api.inspect_volume(anonymous[0])
