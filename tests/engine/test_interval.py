"""Interval parsing and the anchored grid."""

from datetime import UTC, datetime, timedelta

import pytest

from app.engine import ScheduleError, parse_interval, parse_schedule

UTC = UTC
ANCHOR = datetime(2026, 1, 1, 10, 0, 7, tzinfo=UTC)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("10s", 10),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1d12h", 129600),
        ("2h30m15s", 9015),
        ("1H30M", 5400),
        ("  15m\n", 900),
        ("90m", 5400),
        ("366d", 366 * 86400),
        ("0d0h1m", 60),
    ],
)
def test_it_parses_intervals(value: str, seconds: int) -> None:
    assert parse_interval(value) == timedelta(seconds=seconds)


SHAPE = "interval must look like 30s, 15m, 2h, 1d or 1h30m"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "interval is required"),
        ("abc", SHAPE),
        ("15", SHAPE),
        ("m", SHAPE),
        ("1m1h", SHAPE),
        ("1h1h", SHAPE),
        ("1.5h", SHAPE),
        ("-5m", SHAPE),
        ("1 h", SHAPE),
        ("1h 30m", SHAPE),
        ("1w", SHAPE),
        ("١٥m", SHAPE),  # Arabic-Indic digits are not accepted
        ("9s", "interval must be at least 10s"),
        ("0s", "interval must be at least 10s"),
        ("367d", "interval is too long (at most 366d)"),
        ("365d24h1s", "interval is too long (at most 366d)"),
        ("9" * 150 + "d", "interval is too long (at most 366d)"),
        ("1s" * 101, "schedule is too long"),
    ],
)
def test_it_rejects_bad_intervals(value: str, message: str) -> None:
    with pytest.raises(ScheduleError) as excinfo:
        parse_interval(value)
    assert (excinfo.value.field, excinfo.value.message) == ("schedule_value", message)


@pytest.mark.parametrize(
    ("min_seconds", "value", "message"),
    [
        (60, "30s", "interval must be at least 1m"),
        (90, "1m", "interval must be at least 1m30s"),
        (3600, "59m59s", "interval must be at least 1h"),
    ],
)
def test_the_minimum_is_a_setting(min_seconds: int, value: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=f"^{message}$"):
        parse_interval(value, min_seconds=min_seconds)
    with pytest.raises(ScheduleError, match=f"^{message}$"):
        parse_schedule("interval", value, min_interval_seconds=min_seconds)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (at(2026, 1, 1, 10, 5), at(2026, 1, 1, 10, 15, 7)),
        (at(2026, 1, 1, 10, 15, 6), at(2026, 1, 1, 10, 15, 7)),
        (at(2026, 1, 1, 10, 15, 7), at(2026, 1, 1, 10, 30, 7)),  # strictly after
        (datetime(2026, 1, 1, 10, 15, 7, 1, tzinfo=UTC), at(2026, 1, 1, 10, 30, 7)),
        (at(2026, 7, 3, 17, 44, 0), at(2026, 7, 3, 17, 45, 7)),  # months later, no drift
        (at(2026, 1, 1, 9, 40), at(2026, 1, 1, 9, 45, 7)),  # the grid extends before the anchor
        (datetime(2026, 1, 1, 10, 5), at(2026, 1, 1, 10, 15, 7)),  # naive means UTC
        (datetime.fromisoformat("2026-01-01T11:05:00+01:00"), at(2026, 1, 1, 10, 15, 7)),
    ],
)
def test_slots_sit_on_the_anchored_grid(after: datetime, expected: datetime) -> None:
    schedule = parse_schedule("interval", "15m", anchor=ANCHOR)
    assert schedule.next_after(after) == expected


def test_default_anchor_is_the_unix_epoch() -> None:
    schedule = parse_schedule("interval", "15m")
    assert schedule.next_after(at(2026, 1, 1, 10, 5)) == at(2026, 1, 1, 10, 15)
    assert parse_schedule("interval", "7m").next_after(at(1970, 1, 1)) == at(1970, 1, 1, 0, 7)


def test_anchor_microseconds_are_dropped() -> None:
    schedule = parse_schedule("interval", "30s", anchor=datetime(2026, 1, 1, 0, 0, 5, 500000, tzinfo=UTC))
    assert schedule.next_after(at(2026, 1, 1)) == at(2026, 1, 1, 0, 0, 5)


def test_timezone_does_not_move_interval_slots() -> None:
    utc = parse_schedule("interval", "1d", anchor=ANCHOR)
    tokyo = parse_schedule("interval", "1d", "Asia/Tokyo", anchor=ANCHOR)
    assert utc.next_slots(at(2026, 3, 1), 5) == tokyo.next_slots(at(2026, 3, 1), 5)


@pytest.mark.parametrize(
    ("value", "until", "count"),
    [
        ("15m", at(2026, 1, 1, 11, 0, 7), 4),
        ("15m", at(2026, 1, 1, 11, 0, 6), 3),
        ("1h", at(2026, 1, 2, 10, 0, 7), 24),
        ("10s", at(2026, 1, 1, 10, 10, 7), 60),
        ("1d", at(2026, 1, 1, 11, 0, 0), 0),
    ],
)
def test_slots_between_counts(value: str, until: datetime, count: int) -> None:
    schedule = parse_schedule("interval", value, anchor=ANCHOR)
    slots = schedule.slots_between(ANCHOR, until)
    assert len(slots) == count
    assert all(ANCHOR < s <= until for s in slots)


def test_slots_between_limit() -> None:
    schedule = parse_schedule("interval", "10s", anchor=ANCHOR)
    assert len(schedule.slots_between(ANCHOR, at(2026, 1, 2), limit=5)) == 5


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (at(2025, 12, 1), at(2026, 1, 2, 0, 0, 7)),  # first slot at or after start
        (at(2026, 1, 2, 0, 0, 7), at(2026, 1, 2, 0, 15, 7)),
        (at(2026, 1, 2, 0, 50), at(2026, 1, 2, 1, 0, 7)),  # end_at itself is a slot
        (at(2026, 1, 2, 1, 0, 7), None),
        (at(2030, 1, 1), None),
    ],
)
def test_start_and_end_bound_interval_slots(after: datetime, expected: datetime | None) -> None:
    schedule = parse_schedule("interval", "15m", anchor=ANCHOR, start_at=at(2026, 1, 2), end_at=at(2026, 1, 2, 1, 0, 7))
    assert schedule.next_after(after) == expected


def test_start_exactly_on_a_slot_includes_it() -> None:
    schedule = parse_schedule("interval", "15m", anchor=ANCHOR, start_at=at(2026, 1, 2, 0, 0, 7))
    assert schedule.next_after(at(2026, 1, 1)) == at(2026, 1, 2, 0, 0, 7)


def test_far_future_returns_none() -> None:
    assert parse_schedule("interval", "366d").next_after(datetime(9999, 12, 1, tzinfo=UTC)) is None
