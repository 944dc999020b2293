"""Fixtures for tests that drive berth through its HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade

# The watcher subscribes and reconciles in well under a second on a quiet
# engine; this is the patience for a loaded 2-core machine.
STARTUP_WAIT_S = 20.0


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """berth in-process, on a fresh migrated SQLite file and the real engine.

    Handed over once the event watcher has subscribed and run its start-up
    reconcile, so no test races the start-up work.
    """
    upgrade(settings.resolved_database_url)
    app = create_app(settings)
    with TestClient(app) as test_client:
        watcher = app.state.watcher
        if watcher is not None:
            assert watcher.connected.wait(STARTUP_WAIT_S), "events never connected"
        yield test_client
