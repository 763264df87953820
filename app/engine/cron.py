"""Cron evaluation: cronsim, plus the two things it lacks.

cronsim implements Debian cron's DST rule, which is why it is the core here.
It lacks `nW` (nearest weekday) and applies the DST rule only to 5-field
expressions; `_CronSim` adds both. Macros are expanded in cron_syntax.py.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache

from cronsim import CronSim, CronSimError

from .cron_syntax import CronSpec, parse_cron
from .errors import ScheduleError
from .timezones import zone_for_evaluation

UTC = UTC

# Any expression that fires at all fires within 28 years (the calendar's
# weekday/leap-year cycle); cronsim gives up after 50.
_NEVER_FIRES_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


def nearest_weekday(year: int, month: int, day: int) -> int | None:
    """Quartz `W`: the weekday nearest `day`, never leaving the month."""
    first_dow, last = calendar.monthrange(year, month)
    if day > last:
        return None  # like a plain `31`, `31W` skips short months
    dow = (first_dow + day - 1) % 7  # Monday == 0
    if dow == 5:  # Saturday: Friday before, unless that is last month
        return day - 1 if day > 1 else day + 2
    if dow == 6:  # Sunday: Monday after, unless that is next month
        return day + 1 if day < last else day - 2
    return day


class _CronSim(CronSim):
    def __init__(self, spec: CronSpec, dt: datetime):
        super().__init__(spec.expression, dt)
        self.nearest_weekdays = spec.nearest_weekdays
        if spec.nearest_weekdays and not spec.has_last_day:
            self.days.discard(self.LAST)  # the placeholder cron_syntax added
        if spec.has_seconds and self.fixup_tz is None and self.dt.tzinfo not in (None, UTC):
            # cronsim leaves 6-field expressions on the UTC-ticking path, so
            # "0 30 2 * * *" would skip the spring-forward day and fire twice at
            # fall-back. A seconds field should not change the DST rule, so
            # switch on cronsim's own fixed-time handling, using its own test.
            if not self.parts[1].startswith("*") and not self.parts[2].startswith("*"):
                self.fixup_tz = self.dt.tzinfo
                self.dt = self.dt.replace(tzinfo=None)

    def match_dom(self, d: date) -> bool:
        if super().match_dom(d):
            return True
        return any(nearest_weekday(d.year, d.month, n) == d.day for n in self.nearest_weekdays)


@lru_cache(maxsize=8192)
def compile_cron(value: str, timezone_name: str) -> tuple[CronSpec, tzinfo]:
    """Parse and validate once; the poller asks thousands of schedules per tick."""
    spec = parse_cron(value)
    if _first_slot(spec, _NEVER_FIRES_PROBE) is None:
        raise ScheduleError("schedule_value", "this cron never fires")
    return spec, zone_for_evaluation(timezone_name)


def _first_slot(spec: CronSpec, after: datetime) -> datetime | None:
    try:
        return next(_CronSim(spec, after))
    except (CronSimError, StopIteration):
        # cronsim rejects "0 0 30 2 *" outright and gives up on others
        # ("0 0 31 2 */2") after 50 years; either way it never fires.
        return None


def iter_cron(value: str, timezone_name: str, after: datetime) -> Iterator[datetime]:
    """Slots strictly after `after` (aware), ascending, as aware UTC."""
    spec, zone = compile_cron(value, timezone_name)
    try:
        sim = _CronSim(spec, after.astimezone(zone))
        last = after
        while True:
            slot = next(sim).astimezone(UTC)
            # cronsim works in naive wall time for fixed-time jobs, so from a
            # moment inside a repeated (fall-back) hour it can return that
            # hour's first occurrence, which is already past. Skip it.
            if slot > last:
                yield slot
                last = slot
    except (StopIteration, OverflowError):
        return  # no slot within cronsim's 50 years, or past year 9999
