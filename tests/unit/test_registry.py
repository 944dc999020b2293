"""Which registry an image reference names: where credentials may go."""

from __future__ import annotations

import pytest

from app.engine.client import normalise_registry, registry_of


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("busybox", "docker.io"),
        ("library/busybox:1.36", "docker.io"),
        ("docker.io/library/busybox", "docker.io"),
        ("index.docker.io/library/busybox", "docker.io"),
        ("127.0.0.1:5000/team/app:1", "127.0.0.1:5000"),
        ("ghcr.io/team/app@sha256:" + "a" * 64, "ghcr.io"),
        ("localhost/app", "localhost"),
    ],
)
def test_registry_of_an_image(image: str, registry: str) -> None:
    """An image without a registry part is Docker Hub's; others name theirs."""
    found = registry_of(image)

    assert found == registry


def test_registry_spellings_are_one() -> None:
    """Scheme, case and trailing slash do not make another registry."""
    spellings = ["https://Index.Docker.io/", "registry-1.docker.io", "docker.io"]

    assert {normalise_registry(s) for s in spellings} == {"docker.io"}
