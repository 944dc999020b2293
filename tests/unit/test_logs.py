"""Log redaction: secret fields never reach a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from app.logs import REDACTED, configure, is_secret_field


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "api_token",
        "Authorization",
        "environment",
        "Env",
        "registry_password",
        "x-registry-auth",
        "client_secret",
        "credentials",
    ],
)
def test_secret_fields_are_recognised(name: str) -> None:
    """Field names that carry secrets are redacted, in any letter case."""
    assert is_secret_field(name)


@pytest.mark.parametrize("name", ["task_arn", "container", "docker_id", "error"])
def test_ordinary_fields_are_kept(name: str) -> None:
    """The fields that name tasks and containers are written as they are."""
    assert not is_secret_field(name)


@pytest.fixture
def berth_logs() -> Iterator[None]:
    """berth's logging set up for the test, put back as it was after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure("INFO", "json")
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("berth_logs")
def test_secret_values_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """A logged secret field is written as [redacted], the rest as given."""
    log = structlog.get_logger("test")

    log.info("container.created", task_arn="arn:x", api_token="tok-123", env="v=1")

    assert "tok-123" not in caplog.text
    assert "v=1" not in caplog.text
    assert "arn:x" in caplog.text
    assert REDACTED in caplog.text
