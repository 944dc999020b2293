"""The Dockerfile builds offline and runs berth as a non-root user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.conftest import DOCKER_HOST, HOST_LABEL
from tests.support.pybase import build_base_image

ROOT = Path(__file__).resolve().parents[2]
BERTH_UID = 10001
BUILD_TIMEOUT_S = 300
HEALTHY_TIMEOUT_S = 60

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Built:
    image: str
    output: str


def _run(command: list[str], **env: str) -> str:
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
        env={**os.environ, **env},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{output}"
    return output


def _remove_images(api: docker.APIClient, tags: list[str]) -> None:
    # Newest first: an image cannot go while an image built on it remains.
    for tag in reversed(tags):
        try:
            api.remove_image(tag, force=True)
        except docker.errors.NotFound:
            continue


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, docker_api: docker.APIClient
) -> Iterator[Built]:
    """berth's image, built with --network none from local parts only."""
    run = uuid.uuid4().hex[:12]
    base = f"berth-test/python-base:{run}"
    stage = f"berth-test/berth-build:{run}"
    image = f"berth-test/berth:{run}"
    tags = [base, stage, image]
    try:
        build_base_image(base, tmp_path_factory.mktemp("base"))
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        _run(["bash", "scripts/wheelhouse.sh"], PYTHON_VERSION=version)
        common = ["--network", "none", "--build-arg", f"PYTHON_IMAGE={base}"]
        # The build stage gets a tag of its own so that it can be removed.
        _run(["docker", "build", *common, "--target", "build", "-t", stage, "."])
        output = _run(["docker", "build", *common, "-t", image, "."])
        yield Built(image, output)
    finally:
        _remove_images(docker_api, tags)


def test_image_runs_unprivileged_with_a_health_check(
    built: Built, docker_api: docker.APIClient
) -> None:
    """The image's user is a number other than root, and it checks /healthz."""
    config = docker_api.inspect_image(built.image)["Config"]

    assert config["User"] == f"{BERTH_UID}:{BERTH_UID}"
    assert config["Entrypoint"] == ["berth"]
    assert "BERTH_HEALTH_URL" in " ".join(config["Healthcheck"]["Test"])
    assert "/var/lib/berth" in config["Volumes"]


def test_image_is_small(built: Built, docker_api: docker.APIClient) -> None:
    """Only the interpreter and berth's installed packages: no build tools."""
    size = docker_api.inspect_image(built.image)["Size"]

    assert size < 250 * 1024 * 1024


def _docker_socket() -> str:
    assert DOCKER_HOST.startswith("unix://"), "the image test needs a local socket"
    return DOCKER_HOST.removeprefix("unix://")


def _wait_healthy(api: docker.APIClient, container: str) -> str:
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    status = "starting"
    while time.monotonic() < deadline:
        state = api.inspect_container(container)["State"]
        status = state.get("Health", {}).get("Status", state["Status"])
        if status in ("healthy", "unhealthy") or not state["Running"]:
            return str(status)
        time.sleep(0.5)
    return str(status)


def _exec_python(api: docker.APIClient, container: str, code: str) -> str:
    run = api.exec_create(container, ["python3", "-c", code])
    return api.exec_start(run["Id"]).decode()


@pytest.fixture
def running(built: Built, docker_api: docker.APIClient, host_id: str) -> Iterator[str]:
    """berth from the image, on the engine's socket, read-only, as in deploy/."""
    socket_path = _docker_socket()
    container = f"berth-image-test-{uuid.uuid4().hex[:12]}"
    _run(
        [
            "docker", "run", "--detach", "--name", container,
            "--label", f"{HOST_LABEL}={host_id}",
            "--group-add", str(os.stat(socket_path).st_gid),
            "--volume", f"{socket_path}:/var/run/docker.sock",
            "--env", "BERTH_API_TOKEN=image-test-token",
            "--env", f"BERTH_HOST_ID={host_id}",
            "--read-only", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--health-interval", "1s",
            built.image,
        ]
    )  # fmt: skip
    try:
        yield container
    finally:
        docker_api.remove_container(container, force=True, v=True)


def test_container_is_healthy_and_reaches_the_engine(
    running: str, docker_api: docker.APIClient
) -> None:
    """As a non-root user with the socket's group, berth is healthy and ready."""
    health = _wait_healthy(docker_api, running)
    identity = _exec_python(docker_api, running, "import os; print(os.getuid())")
    ready = _exec_python(
        docker_api,
        running,
        "import urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:8000/readyz').read().decode())",
    )

    logs = docker_api.logs(running).decode()
    assert health == "healthy", logs
    assert identity.strip() == str(BERTH_UID)
    assert json.loads(ready)["checks"] == {"database": "ok", "engine": "ok"}
