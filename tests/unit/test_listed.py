"""Reading a list entry's Status text: Docker's human durations, and which
of a container's times they date."""

from __future__ import annotations

import pytest

from app.service.listed import (
    DAY,
    HOUR,
    MINUTE,
    MONTH,
    WEEK,
    YEAR,
    Ago,
    Moment,
    exit_code,
    health,
    human_duration,
    status_moment,
)
from tests.support.fake_engine import human_duration as docker_words


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("Less than a second", 0, 1),
        ("1 second", 1, 2),
        ("24 seconds", 24, 25),
        ("About a minute", MINUTE, 2 * MINUTE),
        ("5 minutes", 5 * MINUTE, 6 * MINUTE),
        ("About an hour", HOUR, 2 * HOUR),
        ("2 hours", 1.5 * HOUR, 3 * HOUR),
        ("3 days", 3 * DAY - DAY / 2, 4 * DAY),
        ("2 weeks", 2 * WEEK - WEEK / 2, 3 * WEEK),
        ("5 months", 5 * MONTH - MONTH / 2, 6 * MONTH),
        ("2 years", 2 * YEAR - YEAR / 2, 3 * YEAR),
    ],
)
def test_each_of_dockers_phrases_reads_as_a_span(
    text: str, low: float, high: float
) -> None:
    """Every phrase go-units writes reads as the span it stands for."""
    assert human_duration(text) == Ago(low, high)


@pytest.mark.parametrize("text", ["", "soon", "5 fortnights", "About a day", "-3 s"])
def test_a_phrase_docker_never_writes_is_unknown(text: str) -> None:
    """Anything else is None, never a guess."""
    assert human_duration(text) is None


@pytest.mark.parametrize(
    "seconds",
    [
        *(0, 0.4, 1, 1.9, 59.9, 60, 119, 120, 3599, 3600, 5399, 5400, 7199, 86399),
        *(2 * DAY, 13 * DAY, 14 * DAY, 59 * DAY, 60 * DAY, 729 * DAY, 730 * DAY),
        3 * YEAR + 5 * DAY,
    ],
)
def test_every_duration_lies_in_the_span_of_its_own_words(seconds: float) -> None:
    """What Docker writes for a duration reads back as a span holding it."""
    ago = human_duration(docker_words(seconds))

    assert ago is not None
    assert ago.low <= seconds < ago.high


@pytest.mark.parametrize(
    ("status", "moment", "text"),
    [
        ("Up 5 minutes", Moment.STARTED, "5 minutes"),
        ("Up About a minute", Moment.STARTED, "About a minute"),
        ("Up Less than a second", Moment.STARTED, "Less than a second"),
        ("Up 2 hours (healthy)", Moment.STARTED, "2 hours"),
        ("Up 3 seconds (health: starting)", Moment.STARTED, "3 seconds"),
        ("Up 4 days (Paused)", Moment.STARTED, "4 days"),
        ("Exited (3) 24 seconds ago", Moment.FINISHED, "24 seconds"),
        ("Exited (0) 2 hours ago", Moment.FINISHED, "2 hours"),
        ("Exited (-1) About an hour ago", Moment.FINISHED, "About an hour"),
        ("Restarting (1) 5 seconds ago", Moment.FINISHED, "5 seconds"),
    ],
)
def test_a_status_dates_the_start_or_the_end(
    status: str, moment: Moment, text: str
) -> None:
    """Up dates the start; Exited and Restarting date the end."""
    assert status_moment(status) == (moment, human_duration(text))


@pytest.mark.parametrize(
    "status", ["Created", "Dead", "Removal In Progress", "", "Up", "Exited (3)"]
)
def test_a_status_with_no_time_dates_nothing(status: str) -> None:
    """No duration in the text: no moment, so nothing to compare."""
    assert status_moment(status) is None


def test_the_exit_code_and_health_are_read_from_the_status() -> None:
    """The code of an exit, and the health of a running container."""
    assert exit_code("Exited (137) 2 minutes ago") == 137
    assert exit_code("Up 5 minutes") is None
    assert health("Up 5 seconds (health: starting)") == "starting"
    assert health("Up 1 second (unhealthy)") == "unhealthy"
    assert health("Up 1 second") is None
