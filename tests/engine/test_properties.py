"""Property tests: nothing but ScheduleError escapes, and slots agree with an oracle.

The oracle is a deliberately naive re-implementation of cron matching in UTC
(field sets built alongside the generated text), used to check both that
next_after() returns a matching instant and that it skips none.
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from app.engine import (
    ScheduleError,
    describe,
    parse_interval,
    parse_schedule,
    preview,
    validate_timezone,
)

UTC = UTC
SETTINGS = settings(max_examples=300, deadline=None, database=None)
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham"]
MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAYS = "SUN MON TUE WED THU FRI SAT".split()

cronish_text = st.text(alphabet="0123456789*/,-#LWlw?@ \tMONFRIJANSUDECyearlyhourboot\x00é", max_size=40)
any_text = st.one_of(st.text(max_size=60), cronish_text, st.text(max_size=300))
instants = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, ZoneInfo("Europe/Berlin")]),
)


def only_schedule_errors(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except ScheduleError as error:
        assert error.field in {"schedule_type", "schedule_value", "timezone", "start_at", "end_at"}
        assert str(error) == error.message and error.message


@SETTINGS
@given(value=any_text, zone=st.one_of(st.sampled_from(ZONES), any_text), after=instants)
def test_any_text_raises_only_schedule_error(value: str, zone: str, after: datetime) -> None:
    for kind in ("cron", "interval"):
        only_schedule_errors(parse_schedule, kind, value, zone)
        only_schedule_errors(describe, kind, value)
        only_schedule_errors(preview, kind, value, zone, after=after, count=3)
    only_schedule_errors(parse_schedule, value, "* * * * *")
    only_schedule_errors(parse_interval, value)
    only_schedule_errors(validate_timezone, zone)


# --- generated valid crons, with the sets they denote -----------------------


@dataclass
class Field:
    text: str
    values: frozenset  # plain values (day-of-week already mod 7)
    extras: tuple = ()  # ("L",), ("LW",), ("W", n), ("#", dow, k), ("DL", dow)


@st.composite
def plain_term(draw, low: int, high: int, names: list[str] | None = None, offset: int = 0):
    # Steps up to the field's size; day-of-week counts 7 days though 0-7 is allowed.
    def show(v: int) -> str:
        if names and 0 <= v - offset < len(names) and draw(st.booleans()):
            return draw(st.sampled_from([names[v - offset], names[v - offset].lower()]))
        return str(v)

    a, b = sorted(draw(st.lists(st.integers(low, high), min_size=2, max_size=2)))
    step = draw(st.integers(1, min(high - low + 1, 7 if names == DAYS else 60)))
    kind = draw(st.sampled_from(["*", "a", "a-b", "*/n", "a-b/n", "a/n"]))
    if kind == "*":
        return "*", set(range(low, high + 1))
    if kind == "a":
        return show(a), {a}
    if kind == "a-b":
        return f"{show(a)}-{show(b)}", set(range(a, b + 1))
    if kind == "*/n":
        return f"*/{step}", set(range(low, high + 1, step))
    if kind == "a-b/n":
        return f"{show(a)}-{show(b)}/{step}", set(range(a, b + 1, step))
    return f"{show(a)}/{step}", set(range(a, high + 1, step))


@st.composite
def field(draw, low: int, high: int, names=None, offset: int = 0, special=None):
    texts, values, extras = [], set(), []
    for _ in range(draw(st.integers(1, 3))):
        if special is not None and draw(st.integers(0, 3)) == 0:
            text, extra = draw(special)
            texts.append(text)
            extras.append(extra)
        else:
            text, vals = draw(plain_term(low, high, names, offset))
            texts.append(text)
            values |= vals
    return Field(",".join(texts), frozenset(values), tuple(extras))


dom_special = st.one_of(
    st.just(("L", ("L",))),
    st.just(("LW", ("LW",))),
    st.integers(1, 31).map(lambda n: (f"{n}W", ("W", n))),
)
dow_special = st.one_of(
    st.integers(0, 7).map(lambda d: (f"{d}L", ("DL", d % 7))),
    st.tuples(st.integers(0, 7), st.integers(1, 5)).map(lambda p: (f"{p[0]}#{p[1]}", ("#", p[0] % 7, p[1]))),
)


@st.composite
def crons(draw):
    seconds = draw(st.one_of(st.none(), field(0, 59)))
    fields = [
        field(0, 59),
        field(0, 23),
        field(1, 31, special=dom_special),
        field(1, 12, MONTHS, offset=1),
        field(0, 7, DAYS, special=dow_special),
    ]
    parts = [draw(f) for f in fields]
    parts[4] = Field(parts[4].text, frozenset(v % 7 for v in parts[4].values), parts[4].extras)
    seconds = seconds or Field("0", frozenset({0}))
    text = " ".join(([seconds.text] if seconds.text != "0" else []) + [p.text for p in parts])
    return text, [seconds, *parts]


@cache
def weekdays_of(year: int, month: int) -> list[int]:
    last = calendar.monthrange(year, month)[1]
    return [x for x in range(1, last + 1) if date(year, month, x).weekday() < 5]


def nearest_weekday(d: date, n: int) -> bool:
    if n > calendar.monthrange(d.year, d.month)[1]:
        return False
    return d.day == min(weekdays_of(d.year, d.month), key=lambda x: abs(x - n))


def day_matches(fields: list[Field], d: date) -> bool:
    dom, month, dow = fields[3], fields[4], fields[5]
    if d.month not in month.values:
        return False
    last = calendar.monthrange(d.year, d.month)[1]
    weekday = d.isoweekday() % 7
    dom_ok = d.day in dom.values or any(
        (e[0] == "L" and d.day == last)
        or (e[0] == "LW" and d.day == weekdays_of(d.year, d.month)[-1])
        or (e[0] == "W" and nearest_weekday(d, e[1]))
        for e in dom.extras
    )
    dow_ok = weekday in dow.values or any(
        (e[0] == "DL" and e[1] == weekday and d.day + 7 > last)
        or (e[0] == "#" and e[1] == weekday and (d.day - 1) // 7 + 1 == e[2])
        for e in dow.extras
    )
    if dom.text.startswith("*") or dow.text.startswith("*"):
        return dom_ok and dow_ok
    return dom_ok or dow_ok


def first_time_after(fields: list[Field], day: date, after: datetime | None) -> datetime | None:
    """Earliest matching time on `day` strictly after `after` (None: any)."""
    hours, minutes, seconds = (sorted(f.values) for f in (fields[2], fields[1], fields[0]))
    for h in hours:
        for m in minutes:
            minute = datetime.combine(day, time(h, m), UTC)
            if after is not None and minute + timedelta(seconds=59) <= after:
                continue  # all of this minute is too early
            for sec in seconds:
                if after is None or minute.replace(second=sec) > after:
                    return minute.replace(second=sec)
    return None


def oracle_next(fields: list[Field], after: datetime, years: int = 8) -> datetime | None:
    day = after.date()
    for _ in range(366 * years):
        if day_matches(fields, day):
            found = first_time_after(fields, day, after if day == after.date() else None)
            if found is not None:
                return found
        day += timedelta(days=1)
    return None


start_instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC))


@SETTINGS
@given(cron=crons(), after=start_instants)
def test_next_after_agrees_with_a_naive_oracle_in_utc(cron, after: datetime) -> None:
    text, fields = cron
    note(f"cron: {text!r}")
    try:
        schedule = parse_schedule("cron", text, min_interval_seconds=1)  # slot math, not the minimum
    except ScheduleError as error:
        assert error.message == "this cron never fires"
        assert oracle_next(fields, datetime(2000, 1, 1, tzinfo=UTC), years=30) is None
        return
    expected = oracle_next(fields, after)
    assume(expected is not None)  # a slot more than 8 years out: the oracle is too slow
    slot = schedule.next_after(after)
    assert slot == expected
    assert slot > after and slot.microsecond == 0 and slot.tzinfo is UTC


@SETTINGS
@given(cron=crons(), after=start_instants, zone=st.sampled_from(ZONES))
def test_slots_in_any_zone_are_strictly_increasing_and_consistent(cron, after: datetime, zone: str) -> None:
    text, _ = cron
    note(f"cron: {text!r}")
    try:
        schedule = parse_schedule("cron", text, zone, min_interval_seconds=1)
    except ScheduleError:
        return
    slots = schedule.next_slots(after, 4)
    assert all(s.tzinfo is UTC and s.microsecond == 0 for s in slots)
    assert all(a < b for a, b in zip([after, *slots], slots))
    assert [schedule.next_after(s) for s in [after, *slots[:-1]]] == slots
    assert all(schedule.next_after(s - timedelta(microseconds=1)) == s for s in slots)
    if slots:
        assert schedule.slots_between(after, slots[-1]) == slots


@SETTINGS
@given(
    seconds=st.integers(10, 366 * 86400),
    anchor=start_instants,
    after=instants,
)
def test_interval_slots_sit_on_the_grid(seconds: int, anchor: datetime, after: datetime) -> None:
    step = timedelta(seconds=seconds)
    schedule = parse_schedule("interval", f"{seconds}s", anchor=anchor.replace(microsecond=0))
    slot = schedule.next_after(after)
    if slot is None:
        assert after.year >= 9998
        return
    # In UTC: adding a timedelta to a Berlin datetime would add wall-clock time.
    assert after < slot <= after.astimezone(UTC) + step
    assert (slot - anchor.replace(microsecond=0)) % step == timedelta(0)


@SETTINGS
@given(
    after=instants,
    zone=st.sampled_from(ZONES),
    value=st.sampled_from(["* * * * *", "0 0 29 2 *", "30 2 * * *", "0 0 L * *", "*/5 * * * * *"]),
)
def test_extreme_instants_never_raise(after: datetime, zone: str, value: str) -> None:
    schedule = parse_schedule("cron", value, zone, min_interval_seconds=1)
    slot = schedule.next_after(after)
    assert slot is None or slot > after
