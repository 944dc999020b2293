"""Which Docker API version a container is created with (create step 3)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from docker.constants import MINIMUM_DOCKER_API_VERSION

from app.config import Settings
from app.engine.client import Engine, EngineVersion
from app.errors import UnsupportedDockerAPIVersionError
from app.service.context import Context
from app.service.create import resolve_api_version
from app.store.db import Database


class FakeEngine:
    """Just enough of berth's Engine interface to answer ``version``."""

    def __init__(self, api_version: str = "1.41", min_api_version: str = "1.12"):
        self.answer = EngineVersion(
            version="20.10.24",
            api_version=api_version,
            min_api_version=min_api_version,
        )
        self.calls = 0

    def version(self) -> EngineVersion:
        self.calls += 1
        return self.answer


def context(tmp_path: Path, engine: FakeEngine) -> Context:
    settings = Settings(state_dir=tmp_path, host_id="unit")
    database = Database(f"sqlite:///{tmp_path / 'unused.db'}")
    # The fake answers only ``version``, the one call under test.
    return Context(settings=settings, db=database, engine=cast(Engine, engine))


def test_no_version_asked_uses_the_engines_own(tmp_path: Path) -> None:
    """Without docker_api_version the engine's maximum is used."""
    ctx = context(tmp_path, FakeEngine(api_version="1.41"))

    assert resolve_api_version(ctx, None) == "1.41"


@pytest.mark.parametrize("requested", ["1.24", "1.30", "1.41"])
def test_a_version_within_the_range_is_used_as_asked(
    tmp_path: Path, requested: str
) -> None:
    """Anything from the floor up to the engine's maximum is kept."""
    ctx = context(tmp_path, FakeEngine())

    assert resolve_api_version(ctx, requested) == requested


def test_a_version_below_docker_pys_floor_is_raised_to_it(tmp_path: Path) -> None:
    """Below what docker-py accepts, the version is raised, not refused."""
    ctx = context(tmp_path, FakeEngine(min_api_version="1.12"))

    assert resolve_api_version(ctx, "1.17") == MINIMUM_DOCKER_API_VERSION


def test_a_version_below_the_engines_floor_is_raised_to_it(tmp_path: Path) -> None:
    """An engine whose minimum is above docker-py's raises to the engine's."""
    ctx = context(tmp_path, FakeEngine(min_api_version="1.30"))

    assert resolve_api_version(ctx, "1.25") == "1.30"


def test_a_version_above_the_engines_maximum_is_refused(tmp_path: Path) -> None:
    """Above the engine's maximum: UnsupportedDockerAPIVersionError, 422."""
    ctx = context(tmp_path, FakeEngine(api_version="1.41"))

    with pytest.raises(UnsupportedDockerAPIVersionError) as caught:
        resolve_api_version(ctx, "1.99")

    assert caught.value.status == 422
    assert "1.99" in caught.value.detail


def test_versions_compare_as_numbers_not_text(tmp_path: Path) -> None:
    """1.100 is above 1.41 and 1.9 below 1.24, whatever the text says."""
    ctx = context(tmp_path, FakeEngine(api_version="1.41"))

    with pytest.raises(UnsupportedDockerAPIVersionError):
        resolve_api_version(ctx, "1.100")
    assert resolve_api_version(ctx, "1.9") == MINIMUM_DOCKER_API_VERSION


def test_one_version_has_one_spelling(tmp_path: Path) -> None:
    """A zero-padded minor version comes back in its usual form."""
    ctx = context(tmp_path, FakeEngine())

    assert resolve_api_version(ctx, "1.030") == "1.30"
