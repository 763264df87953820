"""A validated schedule and its slots."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from .cron import compile_cron, iter_cron
from .cron_gap import check_min_gap
from .describe import describe
from .errors import ScheduleError, normalize_type
from .interval import iter_interval, parse_interval
from .timezones import validate_timezone

UTC = UTC
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JUST_BEFORE = timedelta(microseconds=1)


def as_utc(dt: datetime) -> datetime:
    """Aware UTC; naive input is taken to be UTC already."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    """Build with parse_schedule(); then the methods never raise."""

    type: str
    value: str
    timezone: str = "UTC"
    anchor: datetime | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None

    def next_after(self, t: datetime) -> datetime | None:
        """The first slot strictly after `t`, or None if there is none."""
        return next(self._slots_after(t), None)

    def slots_between(self, after: datetime, until: datetime, limit: int | None = None) -> list[datetime]:
        """Slots s with after < s <= until, ascending."""
        until = as_utc(until)
        slots = itertools.takewhile(lambda s: s <= until, self._slots_after(after))
        return list(itertools.islice(slots, limit))

    def next_slots(self, after: datetime, count: int) -> list[datetime]:
        return list(itertools.islice(self._slots_after(after), max(count, 0)))

    def _slots_after(self, t: datetime) -> Iterator[datetime]:
        try:
            after = as_utc(t)
            if self.start_at is not None:
                # Slots are whole seconds, so "strictly after a microsecond
                # earlier" is "at or after start_at".
                after = max(after, as_utc(self.start_at) - _JUST_BEFORE)
            end = as_utc(self.end_at) if self.end_at is not None else None
        except OverflowError:  # instants at the very edge of datetime's range
            return
        for slot in self._grid_after(after):
            if end is not None and slot > end:
                return
            yield slot

    def _grid_after(self, after: datetime) -> Iterator[datetime]:
        if self.type == "interval":
            anchor = as_utc(self.anchor).replace(microsecond=0) if self.anchor else EPOCH
            return iter_interval(anchor, _interval(self.value), after)
        return iter_cron(self.value, self.timezone, after)


@lru_cache(maxsize=4096)
def _interval(value: str) -> timedelta:
    return parse_interval(value, min_seconds=1)


def parse_schedule(
    schedule_type: str,
    value: str,
    timezone: str = "UTC",
    *,
    anchor: datetime | None = None,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    min_interval_seconds: int = 10,
) -> Schedule:
    """Validate everything a person typed; raise ScheduleError naming the field."""
    if isinstance(schedule_type, str) and isinstance(value, str) and isinstance(timezone, str):
        kind, value, zone = _checked(schedule_type, value, timezone, min_interval_seconds)
    else:  # not hashable, maybe: the uncached check says what is wrong with it
        kind, value, zone = _checked.__wrapped__(schedule_type, value, timezone, min_interval_seconds)
    start = _optional_instant(start_at, "start_at", "start")
    end = _optional_instant(end_at, "end_at", "end")
    if start is not None and end is not None and end <= start:
        raise ScheduleError("end_at", "end must be after start")
    anchor = _optional_instant(anchor, "start_at", "anchor")
    return Schedule(kind, value, zone, anchor, start, end)


@lru_cache(maxsize=4096)
def _checked(schedule_type: str, value: str, timezone: str, min_interval_seconds: int) -> tuple[str, str, str]:
    """(type, value, zone) checked and normalised; cached, as claiming a burst evaluates
    thousands of stored schedules that share a few expressions (a failed check is not cached)."""
    kind = normalize_type(schedule_type)
    zone = validate_timezone(timezone).key
    if kind == "interval":
        parse_interval(value, min_seconds=min_interval_seconds)
    else:
        spec, _ = compile_cron(value, zone)
        check_min_gap(spec, min_interval_seconds)
    return kind, value.strip(), zone


def _optional_instant(value: object, field: str, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ScheduleError(field, f"{what} must be a date and time")
    try:
        return as_utc(value)
    except OverflowError:  # e.g. datetime.min in a zone east of UTC
        raise ScheduleError(field, f"{what} is out of range") from None


@dataclass(frozen=True)
class Preview:
    description: str
    slots: list[datetime]


def preview(
    schedule_type: str,
    value: str,
    timezone: str = "UTC",
    *,
    after: datetime,
    count: int = 5,
    min_interval_seconds: int = 10,
    anchor: datetime | None = None,
) -> Preview:
    """The description and next `count` slots, shown in the schedule's own zone."""
    schedule = parse_schedule(schedule_type, value, timezone, anchor=anchor, min_interval_seconds=min_interval_seconds)
    zone = validate_timezone(schedule.timezone)
    slots = [s.astimezone(zone) for s in schedule.next_slots(after, count)]
    return Preview(describe(schedule.type, schedule.value), slots)
