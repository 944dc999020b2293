"""Docker names: the ECS convention, always valid, never too long."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from app.service.naming import (
    MAX_NAME_LENGTH,
    VALID_NAME,
    clean,
    docker_name,
    new_suffix,
)

SUFFIX = re.compile(r"-?[0-9a-f]{20}$")

# Any Unicode text at all, including surrogates' neighbours, controls and
# the characters Docker forbids; and long enough to need shortening.
any_text = st.text(max_size=400)


def test_name_follows_the_ecs_convention() -> None:
    """prefix-family-version-cleaned name-suffix, in that order."""
    name = docker_name("ecs", "web", "3", "app.v1_x", suffix="0123456789abcdef0123")

    assert name == "ecs-web-3-appv1x-0123456789abcdef0123"


def test_clean_keeps_only_ascii_letters_digits_and_dashes() -> None:
    """Dots, underscores and non-ASCII letters are dropped."""
    assert clean("app.v1_x") == "appv1x"
    assert clean("ça-va_ÄÖ 1") == "a-va1"


def test_suffix_is_twenty_lowercase_hex() -> None:
    """A fresh suffix is 20 lowercase hex characters, different every time."""
    suffixes = {new_suffix() for _ in range(100)}

    assert all(re.fullmatch(r"[0-9a-f]{20}", s) for s in suffixes)
    assert len(suffixes) == 100


@given(prefix=any_text, family=any_text, version=any_text, name=any_text)
def test_any_unicode_input_gives_a_valid_docker_name(
    prefix: str, family: str, version: str, name: str
) -> None:
    """Whatever the parts, the name is valid, short enough and suffixed."""
    result = docker_name(prefix, family, version, name)

    assert VALID_NAME.fullmatch(result)
    assert len(result) <= MAX_NAME_LENGTH
    assert SUFFIX.search(result)
    assert result.isascii()


@given(family=any_text, version=any_text, name=any_text)
def test_shortening_is_deterministic_for_a_given_suffix(
    family: str, version: str, name: str
) -> None:
    """The same parts and suffix always give the same name."""
    suffix = new_suffix()

    first = docker_name("ecs", family, version, name, suffix=suffix)
    second = docker_name("ecs", family, version, name, suffix=suffix)

    assert first == second
    assert first.endswith(suffix)


def test_long_names_are_shortened_not_rejected() -> None:
    """A name far over the limit is cut to fit and keeps its suffix."""
    suffix = "f" * 20

    result = docker_name("ecs", "f" * 300, "1", "n" * 300, suffix=suffix)

    assert len(result) == MAX_NAME_LENGTH
    assert result.startswith("ecs-fff")
    assert result.endswith("-" + suffix)


def test_empty_parts_still_give_a_name_starting_with_an_alphanumeric() -> None:
    """Parts that clean to nothing leave no leading dash."""
    result = docker_name("", "…", "", "ü", suffix="a" * 20)

    assert VALID_NAME.fullmatch(result)
    assert result.endswith("a" * 20)
