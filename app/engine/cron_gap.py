"""The closest two consecutive slots of a cron expression can come, computed from its fields.

A day's slots are the times of day in seconds × minutes × hours; the closest gap is the
smallest difference between consecutive times of one day, or the wrap from the last time of a
day to the first of the next matching day, whichever is smaller. Which days match (day of
month, month, day of week, L, W, #) only matters for the wrap, and only when two matching days
can be adjacent; that is read off the calendar by walking the matching days of one 28-year
cycle (the Gregorian calendar's weekday and leap-year pattern repeats every 28 years between
1901 and 2099), stopping at the first adjacent pair.

DST is left out on purpose. At fall-back a fixed-time job fires once (Debian cron's rule) and
a `*` or `*/n` job ticks in elapsed time, so no gap shrinks. At spring-forward, the times
inside the skipped hour run once at its end: that one catch-up a year can come closer to the
next slot than the cadence does, as Debian cron's own does; the minimum is about the cadence a
schedule asks for, which this computes exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from .cron import _CronSim  # the engine's own day matching (W, L, #, DOM/DOW OR-ing)
from .cron_syntax import CronSpec
from .errors import ScheduleError
from .interval import spoken_interval

DAY = 86_400
_CYCLE_START = datetime(2000, 1, 1, tzinfo=UTC)
_CYCLE_END = datetime(2028, 1, 8, tzinfo=UTC)


def check_min_gap(spec: CronSpec, min_seconds: int) -> None:
    """ScheduleError naming both gaps when the expression's slots can come closer than ``min_seconds``."""
    gap = closest_gap(spec)
    if gap < min_seconds:
        raise ScheduleError(
            "schedule_value",
            f"this cron fires {_spoken(gap)} apart at its closest; the shortest allowed is {_spoken(min_seconds)}",
        )


def _spoken(seconds: int) -> str:
    return spoken_interval(timedelta(seconds=seconds))


def closest_gap(spec: CronSpec) -> int:
    """Seconds between the two closest consecutive slots (wall clock; see the module docs)."""
    times = times_of_day(spec)
    within = min((b - a for a, b in zip(times, times[1:])), default=None)
    wrap = times[0] + DAY - times[-1]
    if within is not None and within <= wrap:
        return within  # a gap across days is at least the wrap
    across = wrap + (closest_days(spec) - 1) * DAY
    return across if within is None else min(within, across)


def times_of_day(spec: CronSpec) -> list[int]:
    """The seconds after midnight at which the expression fires on a matching day, ascending."""
    parts = spec.expression.split()
    seconds = _values(parts[0], 59) if spec.has_seconds else [0]
    minutes, hours = _values(parts[-5], 59), _values(parts[-4], 23)
    return sorted({h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds})


def _values(field: str, high: int) -> list[int]:
    """A seconds, minutes or hours field as cron_syntax writes it: numbers, `*` and `*/n`."""
    values: set[int] = set()
    for term in field.split(","):
        if term == "*":
            values.update(range(high + 1))
        elif term.startswith("*/"):
            values.update(range(0, high + 1, int(term[2:])))
        else:
            values.add(int(term))
    return sorted(values)


@lru_cache(maxsize=1024)
def closest_days(spec: CronSpec) -> int:
    """Fewest days between two consecutive matching days (1 when two can be adjacent)."""
    midnight = CronSpec(
        expression=" ".join(["0", "0", *spec.expression.split()[-3:]]),
        canonical=spec.canonical,
        nearest_weekdays=spec.nearest_weekdays,
        has_last_day=spec.has_last_day,
    )
    closest, previous = None, None
    for day in _CronSim(midnight, _CYCLE_START - timedelta(seconds=1)):
        if day > _CYCLE_END:
            break
        if previous is not None:
            distance = (day - previous).days
            closest = distance if closest is None else min(closest, distance)
            if closest == 1:
                break
        previous = day
    # None: at most one matching day in the cycle (as rare as it gets), so a cycle apart.
    return closest or (_CYCLE_END - _CYCLE_START).days
