"""Fixtures shared by the whole suite: a real engine, a real database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from sqlalchemy.engine import URL

from app.config import Settings
from tests.support.postgres import postgres_server, scratch_database

TEST_IMAGE = os.environ.get("BERTH_TEST_IMAGE", "berth-test/busybox:latest")
DOCKER_HOST = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
HOST_LABEL = "io.berth.host-id"


@pytest.fixture(scope="session")
def docker_api() -> Iterator[docker.APIClient]:
    """A docker-py client for checking what berth did on the engine."""
    client = docker.APIClient(base_url=DOCKER_HOST, version="1.41", timeout=60)
    client.ping()
    yield client
    client.close()


@pytest.fixture
def host_id() -> str:
    """A host identity of the test's own, so cleanup finds only its work."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(tmp_path: Path, host_id: str) -> Settings:
    return Settings(
        state_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'berth.db'}",
        docker_host=DOCKER_HOST,
        host_id=host_id,
        docker_timeout=30,
    )


def remove_labelled(client: docker.APIClient, host_id: str) -> None:
    for container in client.containers(
        all=True, filters={"label": f"{HOST_LABEL}={host_id}"}
    ):
        client.remove_container(container["Id"], force=True, v=True)


@pytest.fixture(autouse=True)
def _cleanup_containers(docker_api: docker.APIClient, host_id: str) -> Iterator[None]:
    """Every container a test's berth made is removed after the test."""
    yield
    remove_labelled(docker_api, host_id)


def unique_arn(family: str = "web") -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:task/test/{family}-{uuid.uuid4().hex}"


@pytest.fixture
def private_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Docker engine of the test's own, to pause, kill and restart."""
    from tests.support.engine import PrivateEngine

    engine = PrivateEngine(Path(tmp_path_factory.mktemp("engine"))).start()
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[URL]:
    """A PostgreSQL server for the session: BERTH_TEST_POSTGRES_URL's, or
    a throwaway cluster started on first use and stopped at the end."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(postgres_admin_url: URL) -> Iterator[str]:
    """A new, empty PostgreSQL database of the test's own."""
    with scratch_database(postgres_admin_url) as url:
        yield url


@pytest.fixture
def pg_settings(settings: Settings, pg_url: str) -> Settings:
    """The test's settings, on its own PostgreSQL database."""
    # A new object, not model_copy: that would carry over a database URL
    # already resolved and cached from the SQLite one.
    return Settings(**{**settings.model_dump(), "database_url": pg_url})
