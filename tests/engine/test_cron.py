"""Cron parsing, validation messages and next-slot tables (UTC unless stated)."""

from datetime import UTC, datetime

import pytest

from app.engine import ScheduleError, parse_schedule

UTC = UTC


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "* * * * *",
        "*/5 * * * *",
        "10-40/10 * * * *",
        "5/15 * * * *",
        "0,15,30,45 * * * *",
        "0 9-17 * * MON-FRI",
        "0 9 * JAN,jul *",
        "0 0 * * sun",
        "0 0 * * 7",
        "0 0 * * 0",
        "0 0 * * 5-7",
        "0 0 L * *",
        "0 0 LW * *",
        "0 0 lw * *",
        "0 0 15W * *",
        "0 0 1w,15W * *",
        "0 0 * * 5L",
        "0 0 * * friL",
        "0 0 * * MON#2",
        "0 0 * * 1#5",
        "*/10 * * * * *",
        "0 30 2 * * *",
        "@yearly",
        "@annually",
        "@MONTHLY",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
        "  0   0  *  *  *  ",
        "0\t0 * * *",
        "00 02 * * *",
        "0 0 29 2 *",
        "0 0 31 * *",
    ],
)
def test_it_accepts_valid_expressions(value: str) -> None:
    schedule = parse_schedule("cron", value)
    assert schedule.type == "cron"
    assert schedule.value == value.strip()
    assert schedule.next_after(at(2026, 1, 1)) is not None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "cron expression is required"),
        ("   ", "cron expression is required"),
        ("1 2 3", "expected 5 or 6 fields, got 3"),
        ("* * * * * * *", "expected 5 or 6 fields, got 7"),
        ("61 * * * *", "minute field: 61 is out of range 0-59"),
        ("60 * * * * *", "second field: 60 is out of range 0-59"),
        ("0 24 * * *", "hour field: 24 is out of range 0-23"),
        ("0 x * * *", "hour field: 'x' is not a number"),
        ("0 0 0 * *", "day-of-month field: 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month field: 32 is out of range 1-31"),
        ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
        ("0 0 * JANN *", "month field: 'JANN' is not a number or month name"),
        ("0 0 * * 8", "day-of-week field: 8 is out of range 0-7"),
        ("0 0 * * MOO", "day-of-week field: 'MOO' is not a number or day name"),
        ("* * * * */0", "day-of-week field: step must be at least 1"),
        ("*/0 * * * *", "minute field: step must be at least 1"),
        ("*/61 * * * *", "minute field: step 61 is out of range 1-60"),
        ("*/ * * * *", "minute field: missing step in '*/'"),
        ("*/x * * * *", "minute field: step 'x' is not a number in '*/x'"),
        ("0 0 10-5 * *", "day-of-month field: range 10-5 goes backwards"),
        ("0 0 * * FRI-MON", "day-of-week field: range FRI-MON goes backwards"),
        ("1- * * * *", "minute field: missing number in '1-'"),
        ("1,,2 * * * *", "minute field: empty item in list '1,,2'"),
        ("0 0 * * #", "day-of-week field: missing number in '#'"),
        ("0 0 * * MON#6", "day-of-week field: occurrence 6 in 'MON#6' is out of range 1-5"),
        ("0 0 * * MON#", "day-of-week field: missing occurrence in 'MON#' (use 1-5, e.g. MON#2)"),
        ("0 0 * * MON#x", "day-of-week field: occurrence 'x' is not a number in 'MON#x' (use 1-5, e.g. MON#2)"),
        ("0 0 * * 5L/2", "day-of-week field: a step cannot follow L in '5L/2'"),
        ("0 0 * * L", "day-of-week field: 'L' needs a day before it, e.g. 5L for the last Friday"),
        ("0 0 L-3 * *", "day-of-month field: 'L-3' is not supported (use L, LW or a day such as 15W)"),
        ("0 0 32W * *", "day-of-month field: 32 is out of range 1-31"),
        ("0 L * * *", "hour field: 'L' is not a number"),
        ("0 0 ? * *", "unexpected character '?'"),
        ("0 0 * * 1\x00", "unexpected character '\\x00'"),
        ("0 0 * * mön", "unexpected character 'ö'"),
        ("99999999999999999999 * * * *", "minute field: 99999999999999999999 is out of range 0-59"),
        ("@reboot", "@reboot is not supported"),
        ("@REBOOT", "@reboot is not supported"),
        (
            "@often",
            "unknown macro '@often' (use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)",
        ),
        ("0 0 30 2 *", "this cron never fires"),
        ("0 0 31 4 *", "this cron never fires"),
        ("0 0 31 2,4,6,9,11 *", "this cron never fires"),
        ("0 0 31W 2 *", "this cron never fires"),
        ("0 0 */3 2 1#5", "this cron never fires"),  # AND: the 5th Monday of February is the 29th
        ("0 0 31 2 */2", "this cron never fires"),
        ("1 " * 101, "schedule is too long"),
    ],
)
def test_it_rejects_invalid_expressions_with_a_readable_message(value: str, message: str) -> None:
    with pytest.raises(ScheduleError) as excinfo:
        parse_schedule("cron", value)
    assert excinfo.value.field == "schedule_value"
    assert excinfo.value.message == message
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("value", "after", "expected"),
    [
        # every minute; strictly after, also with sub-second input
        ("* * * * *", at(2026, 1, 1, 10, 0), at(2026, 1, 1, 10, 1)),
        ("* * * * *", at(2026, 1, 1, 10, 0, 59), at(2026, 1, 1, 10, 1)),
        ("* * * * *", datetime(2026, 1, 1, 9, 59, 59, 999999, tzinfo=UTC), at(2026, 1, 1, 10, 0)),
        ("* * * * *", datetime(2026, 1, 1, 10, 0, 0, 1, tzinfo=UTC), at(2026, 1, 1, 10, 1)),
        ("*/15 * * * *", at(2026, 1, 1, 10, 15), at(2026, 1, 1, 10, 30)),
        ("5/15 * * * *", at(2026, 1, 1, 10, 50), at(2026, 1, 1, 11, 5)),
        ("10-40/10 * * * *", at(2026, 1, 1, 10, 40), at(2026, 1, 1, 11, 10)),
        ("30 2 * * *", at(2026, 1, 1, 2, 30), at(2026, 1, 2, 2, 30)),
        # 6 fields: seconds first
        ("*/10 * * * * *", at(2026, 1, 1, 10, 0, 5), at(2026, 1, 1, 10, 0, 10)),
        ("*/10 * * * * *", at(2026, 1, 1, 10, 0, 50), at(2026, 1, 1, 10, 1, 0)),
        ("15 30 2 * * *", at(2026, 1, 1), at(2026, 1, 1, 2, 30, 15)),
        # leap day
        ("0 0 29 2 *", at(2025, 1, 1), at(2028, 2, 29)),
        ("0 0 29 2 *", at(2028, 2, 29), at(2032, 2, 29)),
        # last day / last weekday of the month
        ("0 0 L * *", at(2026, 2, 1), at(2026, 2, 28)),
        ("0 0 L * *", at(2028, 2, 1), at(2028, 2, 29)),
        ("0 0 L * *", at(2026, 2, 28), at(2026, 3, 31)),
        ("0 0 LW * *", at(2026, 1, 1), at(2026, 1, 30)),  # 31st is a Saturday
        ("0 0 LW * *", at(2026, 5, 1), at(2026, 5, 29)),  # 31st is a Sunday
        ("0 0 LW * *", at(2026, 5, 29), at(2026, 6, 30)),
        # nearest weekday (Quartz): never leaves the month
        ("0 0 15W * *", at(2026, 7, 20), at(2026, 8, 14)),  # Sat 15th -> Fri 14th
        ("0 0 15W * *", at(2026, 2, 1), at(2026, 2, 16)),  # Sun 15th -> Mon 16th
        ("0 0 15W * *", at(2026, 4, 1), at(2026, 4, 15)),  # Wednesday: itself
        ("0 0 1W * *", at(2026, 7, 2), at(2026, 8, 3)),  # Sat 1st -> Mon 3rd
        ("0 0 1W * *", at(2026, 1, 20), at(2026, 2, 2)),  # Sun 1st -> Mon 2nd
        ("0 0 31W * *", at(2026, 5, 2), at(2026, 5, 29)),  # Sun 31st -> Fri 29th
        ("0 0 31W * *", at(2026, 4, 1), at(2026, 5, 29)),  # April has no 31st
        ("0 0 31W * *", at(2026, 1, 1), at(2026, 1, 30)),  # Sat 31st -> Fri 30th
        ("0 0 1W,15W * *", at(2026, 8, 4), at(2026, 8, 14)),
        ("0 0 L,15W * *", at(2026, 8, 15), at(2026, 8, 31)),
        # last / nth weekday of the month
        ("0 0 * * 5L", at(2026, 1, 1), at(2026, 1, 30)),
        ("0 0 * * FRIL", at(2026, 1, 30), at(2026, 2, 27)),
        ("0 0 * * 7L", at(2026, 1, 1), at(2026, 1, 25)),
        ("0 0 * * MON#2", at(2026, 1, 1), at(2026, 1, 12)),
        ("0 0 * * 1#5", at(2026, 1, 1), at(2026, 3, 30)),
        ("0 0 * * 7#1", at(2026, 1, 1), at(2026, 1, 4)),
        # 7 and 0 are both Sunday; names are case-insensitive
        ("0 0 * * 7", at(2026, 1, 1), at(2026, 1, 4)),
        ("0 0 * * 0", at(2026, 1, 1), at(2026, 1, 4)),
        ("0 0 * * sun", at(2026, 1, 1), at(2026, 1, 4)),
        ("0 0 1 jul *", at(2026, 1, 1), at(2026, 7, 1)),
        # day-of-month and day-of-week: OR when both restricted ...
        ("0 0 13 * 5", at(2026, 1, 1), at(2026, 1, 2)),
        ("0 0 13 * 5", at(2026, 1, 9), at(2026, 1, 13)),
        ("0 0 1-7 * 1", at(2026, 1, 8), at(2026, 1, 12)),
        # ... AND when either starts with `*`
        ("0 0 */2 * 1", at(2026, 1, 1), at(2026, 1, 5)),
        ("0 0 */2 * 1", at(2026, 1, 5), at(2026, 1, 19)),
        # macros
        ("@yearly", at(2026, 1, 1), at(2027, 1, 1)),
        ("@monthly", at(2026, 1, 15), at(2026, 2, 1)),
        ("@weekly", at(2026, 1, 1), at(2026, 1, 4)),
        ("@daily", at(2026, 1, 1, 12), at(2026, 1, 2)),
        ("@hourly", at(2026, 1, 1, 12, 1), at(2026, 1, 1, 13)),
    ],
)
def test_next_after_is_the_first_slot_strictly_after(value: str, after: datetime, expected: datetime) -> None:
    assert parse_schedule("cron", value).next_after(after) == expected


def test_naive_input_is_utc_and_other_zones_are_converted() -> None:
    schedule = parse_schedule("cron", "0 12 * * *")
    berlin_morning = datetime.fromisoformat("2026-01-01T09:00:00+01:00")
    assert schedule.next_after(datetime(2026, 1, 1, 8)) == at(2026, 1, 1, 12)
    assert schedule.next_after(berlin_morning) == at(2026, 1, 1, 12)


def test_results_are_aware_utc_whole_seconds() -> None:
    slot = parse_schedule("cron", "0 9 * * *", "Asia/Tokyo").next_after(at(2026, 1, 1, 0, 0, 0))
    assert slot == at(2026, 1, 2, 0)
    assert slot.tzinfo is UTC and slot.microsecond == 0


def test_it_evaluates_in_the_schedules_timezone() -> None:
    schedule = parse_schedule("cron", "0 9 * * *", "America/New_York")
    assert schedule.next_after(at(2026, 1, 1)) == at(2026, 1, 1, 14)


def test_slots_between_is_half_open_and_limited() -> None:
    schedule = parse_schedule("cron", "0 * * * *")
    slots = schedule.slots_between(at(2026, 1, 1, 0), at(2026, 1, 1, 3))
    assert slots == [at(2026, 1, 1, 1), at(2026, 1, 1, 2), at(2026, 1, 1, 3)]
    assert schedule.slots_between(at(2026, 1, 1, 0), at(2026, 1, 1, 3), limit=2) == slots[:2]
    assert schedule.slots_between(at(2026, 1, 1, 3), at(2026, 1, 1, 3)) == []


def test_next_slots_counts_from_after() -> None:
    schedule = parse_schedule("cron", "0 0 * * MON-FRI")
    assert schedule.next_slots(at(2026, 1, 1), 3) == [at(2026, 1, 2), at(2026, 1, 5), at(2026, 1, 6)]
    assert schedule.next_slots(at(2026, 1, 1), 0) == []


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (at(2026, 1, 1), at(2026, 3, 1, 9)),  # before start: first slot at or after it
        (at(2026, 3, 1, 8, 59, 59), at(2026, 3, 1, 9)),
        (at(2026, 3, 1, 9), at(2026, 3, 2, 9)),
        (at(2026, 3, 30, 9), at(2026, 3, 31, 9)),  # end_at itself is a slot
        (at(2026, 3, 31, 9), None),  # past the end: none
    ],
)
def test_start_and_end_bound_the_slots(after: datetime, expected: datetime | None) -> None:
    schedule = parse_schedule("cron", "0 9 * * *", start_at=at(2026, 3, 1, 9), end_at=at(2026, 3, 31, 9))
    assert schedule.next_after(after) == expected


def test_end_must_be_after_start() -> None:
    with pytest.raises(ScheduleError) as excinfo:
        parse_schedule("cron", "* * * * *", start_at=at(2026, 1, 2), end_at=at(2026, 1, 2))
    assert (excinfo.value.field, excinfo.value.message) == ("end_at", "end must be after start")


@pytest.mark.parametrize(
    ("schedule_type", "field"),
    [("cronjob", "schedule_type"), ("", "schedule_type")],
)
def test_unknown_schedule_type(schedule_type: str, field: str) -> None:
    with pytest.raises(ScheduleError) as excinfo:
        parse_schedule(schedule_type, "* * * * *")
    assert excinfo.value.field == field
    assert excinfo.value.message == "schedule type must be 'cron' or 'interval'"


def test_timezone_is_validated_and_canonicalised() -> None:
    assert parse_schedule("cron", "* * * * *", "europe/berlin").timezone == "Europe/Berlin"
    with pytest.raises(ScheduleError) as excinfo:
        parse_schedule("cron", "* * * * *", "Europe/Berln")
    assert (excinfo.value.field, excinfo.value.message) == ("timezone", "unknown timezone 'Europe/Berln'")


def test_edge_of_time_returns_none_instead_of_raising() -> None:
    schedule = parse_schedule("cron", "0 0 29 2 *")
    assert schedule.next_after(datetime(9999, 12, 31, tzinfo=UTC)) is None
    assert schedule.next_after(datetime.max) is None
