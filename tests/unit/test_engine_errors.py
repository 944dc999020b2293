"""Which engine refusals of a start are the caller's, the engine's, or a
conflict with the state of other things."""

from __future__ import annotations

import docker.errors
import pytest
import requests

from app.engine.client import _blames_container, _state_conflict


def _refusal(status: int, message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(message, response, explanation=message)


@pytest.mark.parametrize(
    "message",
    [
        'OCI runtime create failed: exec: "nope": executable file not found',
        "unable to find user nosuchuser: no matching entries in passwd file",
        "error while mounting volume '/var/lib/docker/volumes/v/_data': "
        "missing device in volume options",
    ],
)
def test_a_start_the_containers_own_configuration_breaks_is_its_fault(
    message: str,
) -> None:
    """The engine answers 500 for these, but retrying cannot help: 422."""
    assert _blames_container(_refusal(500, message))


@pytest.mark.parametrize(
    "message",
    [
        "Cannot link to a non running container: /db AS /web/db",
        "Bind for 127.0.0.1:8080 failed: port is already allocated",
        "container is marked for removal and cannot be started",
    ],
)
def test_a_start_other_containers_prevent_is_a_conflict(message: str) -> None:
    """Resolved once the other thing changes: 409, not a failure."""
    assert _state_conflict(_refusal(500, message))


def test_an_engine_fault_is_neither() -> None:
    """A failing engine is the engine's: 502, worth a retry."""
    refusal = _refusal(500, "containerd: connection error: desc = transport")

    assert not _blames_container(refusal)
    assert not _state_conflict(refusal)
