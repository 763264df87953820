"""The minimum interval holds for cron too: an expression whose consecutive slots can come
closer than SCHEDULER_MIN_INTERVAL_SECONDS is refused, naming both gaps."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from app.engine import ScheduleError, parse_schedule
from app.engine.cron_gap import closest_gap
from app.engine.cron_syntax import parse_cron
from tests.engine.test_properties import crons, day_matches

HOUR = 3600


@pytest.mark.parametrize(
    "expression, minimum, message",
    [
        ("* * * * * *", 10, "this cron fires 1 second apart at its closest; the shortest allowed is 10 seconds"),
        ("*/5 * * * * *", 10, "this cron fires 5 seconds apart at its closest; the shortest allowed is 10 seconds"),
        ("0,5 * * * * *", 10, "this cron fires 5 seconds apart at its closest; the shortest allowed is 10 seconds"),
        ("* * * * *", 120, "this cron fires 1 minute apart at its closest; the shortest allowed is 2 minutes"),
        # Across midnight: 23:00, then 00:00 the next day.
        ("0 23,0 * * *", 2 * HOUR, "this cron fires 1 hour apart at its closest; the shortest allowed is 2 hours"),
        # Only the 31st and the 1st of the next month are adjacent.
        ("0 0,23 1,31 * *", 2 * HOUR, "this cron fires 1 hour apart at its closest; the shortest allowed is 2 hours"),
        # Only in leap years: 29 February, then 1 March.
        ("0 0,23 29,1 2,3 *", 2 * HOUR, "this cron fires 1 hour apart at its closest; the shortest allowed is 2 hours"),
        (
            "30 1,2 * * *",
            90 * 60,
            "this cron fires 1 hour apart at its closest; the shortest allowed is 1 hour 30 minutes",
        ),
    ],
)
def test_it_refuses_a_cron_that_fires_closer_than_the_minimum(expression, minimum, message):
    with pytest.raises(ScheduleError) as refused:
        parse_schedule("cron", expression, "Europe/Warsaw", min_interval_seconds=minimum)
    assert (refused.value.field, refused.value.message) == ("schedule_value", message)


@pytest.mark.parametrize(
    "expression, minimum",
    [
        ("*/10 * * * * *", 10),
        ("0,10,20,30,40,50 * * * * *", 10),
        ("* * * * *", 10),
        ("* * * * *", 60),
        ("0 0,23 1 * *", 2 * HOUR),  # the 1st only: 23:00 is never followed by a 00:00 the next day
        ("0 0,23 1,15 * *", 2 * HOUR),
        ("0 0,23 * * MON", 2 * HOUR),
        ("0 22 * * *", 86_400),
        ("@hourly", 3600),
    ],
)
def test_it_accepts_a_cron_whose_slots_are_never_closer_than_the_minimum(expression, minimum):
    parse_schedule("cron", expression, "Pacific/Kiritimati", min_interval_seconds=minimum)


def test_stored_schedules_are_never_stranded_by_the_rule():
    # Rows are read back with a minimum of 1 second, which every cron meets.
    parse_schedule("cron", "* * * * * *", "UTC", min_interval_seconds=1)


CYCLE_START, CYCLE_DAYS = date(2000, 1, 1), 10_234  # 28 years and a week, as the engine walks


@st.composite
def time_field(draw, high: int) -> tuple[str, list[int]]:
    """A few values: lists, or steps wide enough to keep a day's slots countable."""
    if draw(st.booleans()):
        values = sorted(set(draw(st.lists(st.integers(0, high), min_size=1, max_size=3))))
        return ",".join(map(str, values)), values
    step = draw(st.integers(high // 4 + 1, high + 1))
    return f"*/{step}", list(range(0, high + 1, step))


@settings(max_examples=150, deadline=None, database=None)
@given(cron=crons(), seconds=time_field(59), minutes=time_field(59), hours=time_field(23))
def test_the_closest_gap_is_the_smallest_difference_between_enumerated_slots(cron, seconds, minutes, hours):
    """Brute force: every slot of 28 years (one cycle of the calendar), days from the naive
    oracle of test_properties, and the smallest difference between consecutive ones."""
    _, fields = cron
    text = " ".join([seconds[0], minutes[0], hours[0], *(f.text for f in fields[3:])])
    note(f"cron: {text!r}")
    times = sorted(h * 3600 + m * 60 + s for h in hours[1] for m in minutes[1] for s in seconds[1])
    days = [n for n in range(CYCLE_DAYS) if day_matches(fields, CYCLE_START + timedelta(days=n))]
    assume(len(days) >= 2)
    slots = [day * 86_400 + t for day in days for t in times]
    brute = min(b - a for a, b in zip(slots, slots[1:]))
    assert closest_gap(parse_cron(text)) == brute
