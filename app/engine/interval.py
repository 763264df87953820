"""Fixed intervals: `30s`, `15m`, `2h`, `1d`, `1h30m`, on a grid anchored in UTC."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

from .errors import ScheduleError, require_text

MAX_INTERVAL = timedelta(days=366)
_SHAPE = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?", re.ASCII)
_UNITS = (("d", "day", 86400), ("h", "hour", 3600), ("m", "minute", 60), ("s", "second", 1))


def parse_interval(value: str, *, min_seconds: int = 10) -> timedelta:
    text = require_text(value, "interval").lower()
    match = _SHAPE.fullmatch(text)
    if match is None:
        raise ScheduleError("schedule_value", "interval must look like 30s, 15m, 2h, 1d or 1h30m")
    seconds = sum(int(n or 0) * unit for n, (_, _, unit) in zip(match.groups(), _UNITS))
    # Compared as integers first: a 200-digit count would overflow timedelta.
    if seconds > MAX_INTERVAL.total_seconds():
        raise ScheduleError("schedule_value", f"interval is too long (at most {format_interval(MAX_INTERVAL)})")
    if seconds < max(min_seconds, 1):
        raise ScheduleError(
            "schedule_value", f"interval must be at least {format_interval(timedelta(seconds=max(min_seconds, 1)))}"
        )
    return timedelta(seconds=seconds)


def _parts(interval: timedelta) -> list[tuple[int, str, str]]:
    rest = int(interval.total_seconds())
    parts = []
    for short, name, unit in _UNITS:
        count, rest = divmod(rest, unit)
        if count:
            parts.append((count, short, name))
    return parts


def format_interval(interval: timedelta) -> str:
    """Compact form, the same syntax parse_interval reads: 90s -> "1m30s"."""
    return "".join(f"{count}{short}" for count, short, _ in _parts(interval)) or "0s"


def spoken_interval(interval: timedelta) -> str:
    """In words: 90s -> "1 minute 30 seconds"."""
    return " ".join(f"{count} {name}{'' if count == 1 else 's'}" for count, _, name in _parts(interval)) or "0 seconds"


def describe_interval(interval: timedelta) -> str:
    parts = _parts(interval)
    if len(parts) == 1 and parts[0][0] == 1:
        return f"Every {parts[0][2]}"
    return f"Every {spoken_interval(interval)}"


def iter_interval(anchor: datetime, interval: timedelta, after: datetime) -> Iterator[datetime]:
    """Grid points anchor + k*interval strictly after `after` (all aware).

    Elapsed time, not wall time: the grid ignores timezones and DST, and never
    drifts with when a run actually happened.
    """
    try:
        slot = anchor + ((after - anchor) // interval + 1) * interval
        while True:
            yield slot
            slot += interval
    except OverflowError:
        return
