"""Docker names for task containers.

``{prefix}-{family}-{version}-{clean(name)}-{suffix}``, the ECS agent's
convention, always a valid Docker name and never longer than is safe.
"""

from __future__ import annotations

import re
import secrets

_UNSAFE = re.compile(r"[^0-9a-zA-Z-]")

SUFFIX_BYTES = 10  # 20 hex characters

# Docker accepts longer names, but they end up in /etc/hosts entries of
# linked containers and in log paths; 128 keeps every such use safe.
MAX_NAME_LENGTH = 128

VALID_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def clean(part: str) -> str:
    """Keep only ASCII letters, digits and dashes."""
    return _UNSAFE.sub("", part)


def new_suffix() -> str:
    return secrets.token_hex(SUFFIX_BYTES)


def docker_name(
    prefix: str, family: str, version: str, name: str, suffix: str | None = None
) -> str:
    """A fresh Docker name; ``suffix`` is random unless given (for tests)."""
    suffix = suffix if suffix is not None else new_suffix()
    stem = "-".join(clean(p) for p in (prefix, family, version, name))

    # A stem that starts with a dash (an empty prefix and family, say)
    # would make an invalid name; the suffix alone always starts with hex.
    stem = stem.lstrip("-")
    room = MAX_NAME_LENGTH - len(suffix) - 1
    stem = stem[:room]
    return f"{stem}-{suffix}" if stem else suffix
