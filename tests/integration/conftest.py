"""Fixtures for tests that drive berth through its HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """berth in-process, on a fresh migrated SQLite file and the real engine."""
    upgrade(settings.resolved_database_url)
    with TestClient(create_app(settings)) as test_client:
        yield test_client
