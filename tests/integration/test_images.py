"""Images: each container's pull policy, pulls bounded by their own
timeout, and registry credentials from the settings, against a real
registry the tests start and push to."""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade
from tests.conftest import DOCKER_HOST, TEST_IMAGE, remove_labelled, unique_arn
from tests.support.registry import LocalRegistry, SilentRegistry
from tests.support.server import BerthServer

USERNAME = "berth-puller"
# Distinctive, so that finding it anywhere in a log is a finding.
PASSWORD = f"pw-{uuid.uuid4().hex}-never-logged"


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    """A local registry that demands HTTP basic authentication."""
    local = LocalRegistry(USERNAME, PASSWORD).start()
    try:
        yield local
    finally:
        local.stop()


class Images:
    """Tags this test made on the engine, removed afterwards (never the
    test image itself: only tags under the local registry's address)."""

    def __init__(self, api: docker.APIClient, registry: LocalRegistry) -> None:
        self.api = api
        self.registry = registry
        self.refs: set[str] = set()
        self.variants: set[str] = set()

    def ref(self, name: str = "berth-test/busybox") -> str:
        ref = f"{self.registry.address}/{name}:{uuid.uuid4().hex[:12]}"
        self.refs.add(ref)
        return ref

    def push(self, source: str, ref: str) -> None:
        repository, tag = ref.rsplit(":", 1)
        self.api.tag(source, repository, tag=tag)
        for message in self.api.push(
            repository,
            tag=tag,
            stream=True,
            decode=True,
            auth_config=self.registry.auth,
        ):
            assert "error" not in message, message

    def untag(self, ref: str) -> None:
        assert ref.startswith(self.registry.address)
        try:
            self.api.remove_image(ref)
        except docker.errors.ImageNotFound:
            return

    def present(self, ref: str) -> bool:
        try:
            self.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return False
        return True

    def id_of(self, ref: str) -> str:
        return str(self.api.inspect_image(ref)["Id"])

    def variant(self, ref: str) -> str:
        """An image like the test image but with an ID of its own, as
        ``ref``; the ID is returned."""
        repository, tag = ref.rsplit(":", 1)
        container = self.api.create_container(TEST_IMAGE, ["true"])
        try:
            answer = self.api.commit(
                container["Id"],
                repository=repository,
                tag=tag,
                changes=[f"LABEL berth.test.variant={tag}"],
            )
        finally:
            self.api.remove_container(container["Id"], force=True)
        self.variants.add(str(answer["Id"]))
        return str(answer["Id"])

    def clean(self) -> None:
        for ref in self.refs:
            self.untag(ref)
        # A variant that lost its tag to a re-tag would linger untagged.
        keep = self.id_of(TEST_IMAGE)
        for image_id in self.variants - {keep}:
            try:
                self.api.remove_image(image_id)
            except docker.errors.ImageNotFound:
                continue


@pytest.fixture
def images(
    docker_api: docker.APIClient, registry: LocalRegistry, host_id: str
) -> Iterator[Images]:
    made = Images(docker_api, registry)
    yield made
    # Containers first: an image a container uses cannot lose its tag.
    remove_labelled(docker_api, host_id)
    made.clean()


def _client(settings: Settings, **values: Any) -> TestClient:
    configured = Settings(**{**settings.model_dump(), **values})
    upgrade(configured.resolved_database_url)
    return TestClient(create_app(configured))


@pytest.fixture
def client(settings: Settings, registry: LocalRegistry) -> Iterator[TestClient]:
    """berth with the registry's credentials, and its address, in its settings."""
    with _client(
        settings,
        registry_username=USERNAME,
        registry_password=PASSWORD,
        registry_address=registry.address,
    ) as client:
        yield client


def test_credentials_go_only_to_their_registry(
    settings: Settings, images: Images
) -> None:
    """Credentials meant for another registry are not sent to this one, so
    a caller cannot collect them by naming an image on a registry it runs."""
    ref = images.ref()
    images.push(TEST_IMAGE, ref)
    images.untag(ref)

    with _client(
        settings,
        registry_username=USERNAME,
        registry_password=PASSWORD,
        registry_address="registry.example.com",
    ) as elsewhere:
        answer = _create(elsewhere, ref, "always")

    assert answer.status_code == 422
    assert answer.json()["error_name"] == "ImageNotFoundError"


def _create(client: httpx.Client, image: str, policy: str | None) -> Any:
    container: dict[str, Any] = {"name": "main", "image": image, "command": ["true"]}
    if policy is not None:
        container["pull_policy"] = policy
    task = client.post(
        "/v1/tasks",
        json={
            "arn": unique_arn("images"),
            "family": "images",
            "version": "1",
            "containers": [container],
        },
    ).json()
    return client.post(f"/v1/tasks/{task['id']}/containers/main/create")


def _image_of(api: docker.APIClient, docker_id: str) -> str:
    return str(api.inspect_container(docker_id)["Image"])


def test_always_pulls_an_absent_image_from_the_registry(
    client: TestClient, images: Images, docker_api: docker.APIClient
) -> None:
    """``always`` pulls from the registry, with the settings' credentials,
    an image the engine does not have."""
    ref = images.ref()
    images.push(TEST_IMAGE, ref)
    images.untag(ref)

    created = _create(client, ref, "always")

    assert created.status_code == 201, created.text
    assert images.present(ref)
    assert _image_of(docker_api, created.json()["docker_id"]) == images.id_of(
        TEST_IMAGE
    )


def test_always_pulls_again_while_if_missing_keeps_the_local_image(
    client: TestClient, images: Images, docker_api: docker.APIClient
) -> None:
    """With a newer image pushed under a tag the engine already has,
    ``if-missing`` (the default) uses the engine's copy and ``always``
    fetches the registry's."""
    ref = images.ref()
    newer = images.variant(ref)
    images.push(ref, ref)
    docker_api.tag(TEST_IMAGE, *ref.rsplit(":", 1))
    older = images.id_of(ref)

    kept = _create(client, ref, None)
    pulled = _create(client, ref, "always")

    assert (kept.status_code, pulled.status_code) == (201, 201)
    assert older != newer
    assert _image_of(docker_api, kept.json()["docker_id"]) == older
    assert _image_of(docker_api, pulled.json()["docker_id"]) == newer


def test_if_missing_pulls_an_absent_image(client: TestClient, images: Images) -> None:
    """The default policy pulls an image the engine lacks, then creates."""
    ref = images.ref()
    images.push(TEST_IMAGE, ref)
    images.untag(ref)

    created = _create(client, ref, "if-missing")

    assert created.status_code == 201, created.text
    assert images.present(ref)


def test_never_with_a_missing_image_is_image_not_found(
    client: TestClient, images: Images, docker_api: docker.APIClient, host_id: str
) -> None:
    """``never`` does not pull: a missing image is ImageNotFoundError, a
    4xx, and nothing is created or fetched, though the registry has it."""
    ref = images.ref()
    images.push(TEST_IMAGE, ref)
    images.untag(ref)

    refused = _create(client, ref, "never")

    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["error_name"] == "ImageNotFoundError"
    assert not images.present(ref)
    made = docker_api.containers(
        all=True, filters={"label": f"io.berth.host-id={host_id}"}
    )
    assert made == []


def test_never_uses_an_image_the_engine_has(client: TestClient) -> None:
    """``never`` creates from an image already on the engine."""
    created = _create(client, TEST_IMAGE, "never")

    assert created.status_code == 201, created.text


def test_a_registry_refusing_the_pull_is_image_not_found(
    settings: Settings, images: Images
) -> None:
    """Without the credentials the registry refuses the pull, answered
    as ImageNotFoundError with the engine's reason: it is the settings'
    credentials that made the other pulls work."""
    ref = images.ref()
    images.push(TEST_IMAGE, ref)
    images.untag(ref)

    with _client(settings) as anonymous:
        refused = _create(anonymous, ref, "always")

    assert refused.status_code == 422
    assert refused.json()["error_name"] == "ImageNotFoundError"
    assert "basic auth" in refused.json()["detail"]


def test_a_pull_is_cut_at_its_own_timeout(settings: Settings) -> None:
    """A registry that never answers holds a pull no longer than
    BERTH_IMAGE_PULL_TIMEOUT: the create answers 504 DockerTimeoutError."""
    silent = SilentRegistry().start()
    try:
        with _client(settings, image_pull_timeout=2) as impatient:
            started = time.monotonic()
            answer = _create(impatient, f"{silent.address}/x/y:z", "always")
            elapsed = time.monotonic() - started
    finally:
        silent.stop()

    assert answer.status_code == 504
    assert answer.json()["error_name"] == "DockerTimeoutError"
    assert "pull" in answer.json()["detail"]
    assert elapsed < 15


def _secret_forms() -> list[str]:
    header = base64.urlsafe_b64encode(
        json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
    ).decode()
    return [PASSWORD, header, base64.b64encode(PASSWORD.encode()).decode()]


@pytest.mark.slow
def test_credentials_are_never_logged(
    tmp_path: Path, settings: Settings, images: Images
) -> None:
    """A server logging at DEBUG pulls with the settings' credentials and
    never writes the password, nor the header that carries it."""
    ref = images.ref()
    images.push(TEST_IMAGE, ref)
    images.untag(ref)
    server = BerthServer(
        {
            "BERTH_DATABASE_URL": settings.resolved_database_url,
            "BERTH_HOST_ID": settings.host_id,
            "BERTH_DOCKER_HOST": DOCKER_HOST,
            "BERTH_STATE_DIR": str(tmp_path),
            "BERTH_REGISTRY_USERNAME": USERNAME,
            "BERTH_REGISTRY_PASSWORD": PASSWORD,
            "BERTH_REGISTRY_ADDRESS": images.registry.address,
            "BERTH_LOG_LEVEL": "DEBUG",
        },
        tmp_path / "berth.log",
    )
    try:
        server.start()
        with server.client() as http:
            created = _create(http, ref, "always")
    finally:
        server.stop()

    output = server.output()
    assert created.status_code == 201, created.text
    assert "image.pulled" in output
    for secret in _secret_forms():
        assert secret not in output


def test_a_registry_that_cannot_be_reached_is_a_pull_failure(
    client: TestClient, docker_api: docker.APIClient
) -> None:
    """Nothing listens where the image's registry should be. With the image
    on the engine, ``always`` is 502 CannotPullImageError, worth a retry;
    without it, there is nothing to create from: 422 ImageNotFoundError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cached = f"127.0.0.1:{port}/berth-test/cached:1"
    docker_api.tag(TEST_IMAGE, cached.rsplit(":", 1)[0], "1")

    try:
        stale = _create(client, cached, "always")
        absent = _create(client, f"127.0.0.1:{port}/berth-test/absent:1", "always")
    finally:
        docker_api.remove_image(cached)

    assert stale.status_code == 502, stale.text
    assert stale.json()["error_name"] == "CannotPullImageError"
    assert "connection refused" in stale.json()["detail"]
    assert absent.status_code == 422, absent.text
    assert absent.json()["error_name"] == "ImageNotFoundError"
    assert "connection refused" in absent.json()["detail"]
