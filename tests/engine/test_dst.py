"""DST changeovers, Debian cron's rule (see DESIGN.md "Time semantics").

Fixed-time jobs: a local time skipped by spring-forward fires once, at the
first instant after the gap; a repeated local time fires once, at its first
occurrence. Jobs with `*` in the minute or hour field follow the wall clock
and fire in both occurrences of a repeated hour.
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.engine import ScheduleError, all_timezones, parse_schedule, validate_timezone

UTC = UTC

# (zone, changeover day, kind)
CHANGEOVERS = [
    ("Europe/Berlin", date(2026, 3, 29), "spring"),  # 02:00 -> 03:00
    ("Europe/Berlin", date(2026, 10, 25), "fall"),  # 03:00 -> 02:00
    ("America/New_York", date(2026, 3, 8), "spring"),  # 02:00 -> 03:00
    ("America/New_York", date(2026, 11, 1), "fall"),  # 02:00 -> 01:00
    ("Australia/Sydney", date(2026, 10, 4), "spring"),  # 02:00 -> 03:00
    ("Australia/Sydney", date(2026, 4, 5), "fall"),  # 03:00 -> 02:00
]


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_day_slots(value: str, zone: str, day: date) -> list[datetime]:
    """Slots from local midnight (inclusive) to the next local midnight (exclusive)."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, datetime.min.time(), tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
    slots = parse_schedule("cron", value, zone).slots_between(start - timedelta(seconds=1), end)
    return [s for s in slots if s < end]


@pytest.mark.parametrize(
    ("zone", "value", "day", "expected_utc"),
    [
        # spring forward: 02:30 does not exist, fires at 03:00 local
        ("Europe/Berlin", "30 2 * * *", date(2026, 3, 29), at(2026, 3, 29, 1, 0)),
        ("America/New_York", "30 2 * * *", date(2026, 3, 8), at(2026, 3, 8, 7, 0)),
        ("Australia/Sydney", "30 2 * * *", date(2026, 10, 4), at(2026, 10, 3, 16, 0)),
        # fall back: 02:30 happens twice, fires at the first (summer-time) one
        ("Europe/Berlin", "30 2 * * *", date(2026, 10, 25), at(2026, 10, 25, 0, 30)),
        ("Australia/Sydney", "30 2 * * *", date(2026, 4, 5), at(2026, 4, 4, 15, 30)),
        # New York repeats 01:00-01:59, so 02:30 is ordinary and 01:30 is ambiguous
        ("America/New_York", "30 2 * * *", date(2026, 11, 1), at(2026, 11, 1, 7, 30)),
        ("America/New_York", "30 1 * * *", date(2026, 11, 1), at(2026, 11, 1, 5, 30)),
        # a seconds field does not change the rule
        ("Europe/Berlin", "0 30 2 * * *", date(2026, 3, 29), at(2026, 3, 29, 1, 0)),
        ("Europe/Berlin", "0 30 2 * * *", date(2026, 10, 25), at(2026, 10, 25, 0, 30)),
    ],
)
def test_a_fixed_time_job_fires_exactly_once_on_changeover_days(
    zone: str, value: str, day: date, expected_utc: datetime
) -> None:
    assert local_day_slots(value, zone, day) == [expected_utc]


@pytest.mark.parametrize(("zone", "day", "kind"), CHANGEOVERS)
@pytest.mark.parametrize(
    ("value", "per_hour"),
    [("*/15 * * * *", 4), ("30 * * * *", 1), ("0 * * * *", 1), ("@hourly", 1)],
)
def test_wall_clock_jobs_follow_the_clock(zone: str, day: date, kind: str, value: str, per_hour: int) -> None:
    hours = 23 if kind == "spring" else 25
    slots = local_day_slots(value, zone, day)
    assert len(slots) == hours * per_hour
    assert slots == sorted(set(slots))


def test_both_occurrences_of_the_repeated_hour_fire_for_wall_clock_jobs() -> None:
    slots = local_day_slots("30 * * * *", "Europe/Berlin", date(2026, 10, 25))
    assert at(2026, 10, 25, 0, 30) in slots  # 02:30 CEST
    assert at(2026, 10, 25, 1, 30) in slots  # 02:30 CET


def test_from_inside_the_repeated_hour_a_fixed_time_job_waits_for_tomorrow() -> None:
    # 02:15 CET is after the (only) 02:30 slot, which was at 02:30 CEST.
    schedule = parse_schedule("cron", "30 2 * * *", "Europe/Berlin")
    second_0215 = at(2026, 10, 25, 1, 15)
    assert schedule.next_after(second_0215) == at(2026, 10, 26, 1, 30)
    assert schedule.next_after(at(2026, 10, 25, 0, 15)) == at(2026, 10, 25, 0, 30)


def test_next_after_steps_through_a_fall_back_hour_one_slot_at_a_time() -> None:
    schedule = parse_schedule("cron", "*/30 * * * *", "Europe/Berlin")
    slots = schedule.next_slots(at(2026, 10, 24, 23, 45), 6)
    assert slots == [
        at(2026, 10, 25, 0, 0),
        at(2026, 10, 25, 0, 30),
        at(2026, 10, 25, 1, 0),
        at(2026, 10, 25, 1, 30),
        at(2026, 10, 25, 2, 0),
        at(2026, 10, 25, 2, 30),
    ]
    assert [schedule.next_after(s) for s in slots[:-1]] == slots[1:]


def test_interval_slots_ignore_dst() -> None:
    schedule = parse_schedule("interval", "1h", "Europe/Berlin")
    slots = schedule.slots_between(at(2026, 3, 28, 23), at(2026, 3, 29, 23))
    assert len(slots) == 24
    assert all(b - a == timedelta(hours=1) for a, b in zip(slots, slots[1:]))


@pytest.mark.parametrize(
    ("name", "key"),
    [("UTC", "UTC"), ("Europe/Berlin", "Europe/Berlin"), (" america/new_york ", "America/New_York")],
)
def test_validate_timezone_accepts_iana_names(name: str, key: str) -> None:
    assert validate_timezone(name) == ZoneInfo(key)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "timezone is required"),
        ("  ", "timezone is required"),
        ("Europe/Berln", "unknown timezone 'Europe/Berln'"),
        ("../../etc/passwd", "unknown timezone '../../etc/passwd'"),
        ("Europe", "unknown timezone 'Europe'"),
        ("localtime", "unknown timezone 'localtime'"),
        ("UTC\x00", "unknown timezone 'UTC\\x00'"),
        ("Zürich", "unknown timezone 'Zürich'"),
    ],
)
def test_validate_timezone_rejects_unknown_names(name: str, message: str) -> None:
    with pytest.raises(ScheduleError) as excinfo:
        validate_timezone(name)
    assert (excinfo.value.field, excinfo.value.message) == ("timezone", message)


def test_all_timezones_is_sorted_and_complete() -> None:
    names = all_timezones()
    assert names == sorted(names)
    assert {"UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"} <= set(names)
    assert "localtime" not in names
