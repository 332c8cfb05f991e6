"""``acr purge`` style durations: ``30d``, ``1d12h``, ``2h``, ``10m``, ``1h15m30s``, ``0d``."""

from __future__ import annotations

import re
from datetime import timedelta

#: The longest duration accepted (``acr purge`` caps ``--ago`` at 150 years so that huge values cannot wrap).
MAX_DURATION = timedelta(days=150 * 365)

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DAYS = re.compile(r"^(\d+)d")
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


class InvalidDurationError(ValueError):
    """A string that is not a duration."""


def parse_duration(text: str) -> timedelta:
    """Parse ``[N]d[GoDuration]`` into a timedelta, capped at :data:`MAX_DURATION`.

    The day part comes first (``1d12h``); the rest is a Go duration (``2h45m``, ``1.5h``, ``90s``).
    ``0`` alone means zero.
    """
    value = text.strip()
    if value == "0":
        return timedelta(0)
    seconds = 0.0
    rest = value
    days = _DAYS.match(rest)
    if days:
        seconds += int(days.group(1)) * 86400.0
        rest = rest[days.end():]
    position = 0
    while position < len(rest):
        part = _PART.match(rest, position)
        if part is None:
            break
        seconds += float(part.group(1)) * _UNITS[part.group(2)]
        position = part.end()
    if not value or position != len(rest) or (not days and not rest):
        raise InvalidDurationError(f"invalid duration {text!r}: expected e.g. 30d, 1d12h, 2h, 10m or 1h15m")
    if seconds >= MAX_DURATION.total_seconds():
        return MAX_DURATION
    return timedelta(seconds=seconds)
