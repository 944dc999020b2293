"""What a list entry's ``Status`` text says beyond the state word.

Docker writes it for people: "Up 5 minutes (healthy)", "Exited (3) 24
seconds ago", "Restarting (1) About a minute ago". Read here, as pure
functions, so that recovery can tell from one list call which containers
moved while nobody listened, and inspect only those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

SECOND = 1.0
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
# What Docker counts in (go-units' HumanDuration): a month is 30 days and
# a year 365.
MONTH = 30 * DAY
YEAR = 365 * DAY

_UNITS = {
    "second": SECOND,
    "minute": MINUTE,
    "hour": HOUR,
    "day": DAY,
    "week": WEEK,
    "month": MONTH,
    "year": YEAR,
}

_COUNTED = re.compile(r"(?P<n>[0-9]+) (?P<unit>[a-z]+?)s?", re.ASCII)
_UP = re.compile(r"Up (?P<ago>.+?)(?: \((?:Paused|healthy|unhealthy|health: \w+)\))?")
_ENDED = re.compile(r"(?:Exited|Restarting) \((?P<code>-?[0-9]+)\) (?P<ago>.+) ago")
_EXITED = re.compile(r"Exited \((?P<code>-?[0-9]+)\)")
_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")


@dataclass(frozen=True)
class Ago:
    """How long ago something happened: at least ``low``, under ``high`` s."""

    low: float
    high: float


class Moment(StrEnum):
    """Which of a container's times a ``Status`` text dates."""

    STARTED = "started"
    FINISHED = "finished"


def human_duration(text: str) -> Ago | None:
    """The span of true durations Docker writes as ``text``; None if unknown.

    Seconds and minutes are truncated ("2 minutes" is 120 s to 180 s);
    hours and longer are rounded by newer engines and truncated by older
    ones, so those also reach half a unit below the count.
    """
    text = text.strip()
    if text == "Less than a second":
        return Ago(0.0, SECOND)
    if text == "About a minute":
        return Ago(MINUTE, 2 * MINUTE)
    if text == "About an hour":
        return Ago(HOUR, 2 * HOUR)
    found = _COUNTED.fullmatch(text)
    if found is None or found["unit"] not in _UNITS:
        return None
    count, unit = int(found["n"]), _UNITS[found["unit"]]
    rounded = unit / 2 if unit >= HOUR else 0.0
    return Ago(max(count * unit - rounded, 0.0), (count + 1) * unit)


def status_moment(status: str) -> tuple[Moment, Ago] | None:
    """Which time ``status`` dates and how long before the list call.

    "Up …" dates the start; "Exited (…) … ago" and "Restarting (…) … ago"
    date the end of the last run. "Created", "Dead" and the rest date
    nothing.
    """
    status = status.strip()
    up = _UP.fullmatch(status)
    if up is not None:
        ago = human_duration(up["ago"])
        return (Moment.STARTED, ago) if ago is not None else None
    ended = _ENDED.fullmatch(status)
    if ended is not None:
        ago = human_duration(ended["ago"])
        return (Moment.FINISHED, ago) if ago is not None else None
    return None


def exit_code(status: str) -> int | None:
    """The exit code an "Exited (137) 2 minutes ago" status names."""
    found = _EXITED.match(status.strip())
    return int(found["code"]) if found is not None else None


def health(status: str) -> str | None:
    """The health an "Up 5 seconds (health: starting)" status names."""
    found = _HEALTH.search(status)
    return found.group(1).removeprefix("health: ") if found is not None else None
