"""croniter as a second opinion: where its cron semantics and ours agree, the slots agree.

Our engine (cronsim plus our additions) defines the product's semantics: Vixie/Debian
cron. croniter is independent code with a few deliberate differences, so the generated
expressions stay inside the subset both read alike, and the oracle is called with
`second_at_beginning=True` (croniter's optional seconds field is otherwise the LAST one;
ours is the first) and `implement_cron_bug=True` (Vixie's rule: day-of-month and
day-of-week are AND-ed when either starts with `*`, otherwise OR-ed).

Known differences (each one is shown by an example in KNOWN_DIFFERENCES below, so the
list stays true when either side changes):

- Fall back: croniter fires a fixed-time job in both occurrences of the repeated hour;
  we fire it once, at the first (Debian).
- Spring forward: a job with `*` in its minute or hour field whose hour is skipped fires
  once after the gap in croniter; we skip it, as it follows the wall clock (Debian).
- "Last Friday" is `5L` for us and `L5` for croniter (which rejects `5L`).
- `LW` (last weekday of the month), and `nW` in a list (`1,15W`), are rejected by croniter.
- `31W` in a shorter month: croniter takes the weekday nearest the month's last day; we
  skip the month, as a plain `31` does.
- `nW`, `n#k` or `nL` next to a restricted other day field: we OR the two fields as for
  plain days; croniter intersects them (or finds no date at all).
- `n#k` or `nL` in a list with plain days (`1,5#2`) is rejected by croniter.
- `a/n` in day-of-week counts up to 7 (= Sunday) for us, as cronie does (`MON/2` fires
  on Sundays); croniter stops at 6.
- A day field with `*` after its first item (`1,*`, `1,*/2`) counts as restricted for us,
  as in Vixie cron (only a leading `*` counts), so the two day fields are OR-ed; croniter
  may read that field, or the other one, as `*` and AND them.
- `L` with 30 other days of the month (`2-31,L`) is every day for croniter (31 items look
  like the whole field to it), so it fires on the 1st too.
- A range of one value (`5-5`, `FEB-FEB`) is that value for us; croniter reads it as the
  whole field ("Jan-Jan" as every month, on purpose: see its `_expand`).
- croniter also accepts syntax we refuse (`H`, `R`, `?`, a year field); not compared here.
"""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import CroniterBadDateError, CroniterError, croniter
from hypothesis import given, note, settings
from hypothesis import strategies as st

from app.engine import ScheduleError, parse_schedule
from app.engine.cron_syntax import MACROS
from tests.engine.test_properties import DAYS, MONTHS, field

UTC = UTC
SETTINGS = settings(max_examples=150, deadline=None, database=None)
SLOTS = 6
ZONES_WITHOUT_DST = ["UTC", "Asia/Tokyo", "Etc/GMT-5", "Etc/GMT+11", "Asia/Kolkata", "Asia/Kathmandu"]
ZONES_WITH_DST = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Pacific/Chatham"]
# Far enough from a changeover that neither side's DST handling is involved.
CHANGEOVER_MARGIN = timedelta(hours=6)


def croniter_from(text: str, zone: str, after: datetime) -> croniter:
    """croniter reading our field order and Vixie's day-of-month/day-of-week rule."""
    return croniter(text, after.astimezone(ZoneInfo(zone)), second_at_beginning=True, implement_cron_bug=True)


def croniter_slots(text: str, zone: str, after: datetime, count: int) -> list[datetime]:
    # croniter spells "last Friday" L5; we spell it 5L.
    it = croniter_from(re.sub(r"\b(\d)L\b", r"L\1", text), zone, after)
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


def our_slots(text: str, zone: str, after: datetime, count: int) -> list[datetime]:
    return parse_schedule("cron", text, zone, min_interval_seconds=1).next_slots(after, count)


# --- the subset both read alike ---------------------------------------------

NAME_VALUES = {name: i for i, name in enumerate(DAYS)} | {name: i + 1 for i, name in enumerate(MONTHS)}


def has_one_value_range(text: str) -> bool:
    def value(v: str) -> int:
        return NAME_VALUES[v.upper()] if v.upper() in NAME_VALUES else int(v)

    for term in text.split(","):
        low, dash, high = term.split("/")[0].partition("-")
        if dash and value(low) == value(high):
            return True
    return False


def agreed_field(low: int, high: int, names=None, offset: int = 0, special=None, items_but_all=None):
    fields = field(low, high, names, offset, special)
    if items_but_all:
        fields = fields.filter(lambda f: f.text.startswith("*") or len(f.values) + len(set(f.extras)) != items_but_all)
    return fields.map(lambda f: f.text).filter(lambda t: not has_one_value_range(t))


def agreed_day_field(low: int, high: int, names=None, special=None, items_but_all=None):
    """A day field with `*` only as its first item (see `1,*` above)."""
    return agreed_field(low, high, names, special=special, items_but_all=items_but_all).filter(lambda t: ",*" not in t)


# `a/n` in day-of-week is left out: it reaches 7 (Sunday) for us only.
plain_dow = agreed_day_field(0, 7, DAYS).filter(lambda t: not re.search(r"(^|,)\w+/", t))
plain_dom = agreed_day_field(1, 31)
# 30 plain days and `L` are 31 items, which croniter takes for `*` (see above).
dom_with_last = agreed_day_field(1, 31, special=st.just(("L", ("L",))), items_but_all=31)
nearest_weekday = st.integers(1, 28).map(lambda n: f"{n}W")  # alone; 29-31 differ in short months
nth_or_last_weekday = st.one_of(
    st.tuples(st.integers(0, 7), st.integers(1, 5)).map(lambda p: f"{p[0]}#{p[1]}"),
    st.integers(0, 7).map(lambda d: f"{d}L"),
)
star_step = st.integers(1, 7).map(lambda n: f"*/{n}")


@st.composite
def day_fields(draw) -> tuple[str, str]:
    """(day-of-month, day-of-week): `W`, `#` and `nL` only where the other field starts with `*`."""
    kind = draw(st.sampled_from(["plain", "last", "nearest", "nth"]))
    if kind == "plain":
        return draw(plain_dom), draw(plain_dow)
    if kind == "last":
        return draw(dom_with_last), draw(plain_dow)
    if kind == "nearest":
        return draw(nearest_weekday), draw(st.one_of(st.just("*"), star_step))
    terms = draw(st.lists(nth_or_last_weekday, min_size=1, max_size=2))
    return draw(st.one_of(st.just("*"), star_step)), ",".join(terms)


@st.composite
def agreed_crons(draw) -> str:
    dom, dow = draw(day_fields())
    parts = [
        draw(agreed_field(0, 59)),
        draw(agreed_field(0, 23)),
        dom,
        draw(agreed_field(1, 12, MONTHS, offset=1)),
        dow,
    ]
    if draw(st.booleans()):
        parts.insert(0, draw(agreed_field(0, 59)))  # our seconds field comes first
    return " ".join(parts)


instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC))


def assert_slots_agree(text: str, zone: str, after: datetime, keep=lambda slot: True) -> None:
    try:
        ours = our_slots(text, zone, after, SLOTS)
    except ScheduleError as error:
        assert error.message == "this cron never fires"
        with pytest.raises(CroniterBadDateError):
            croniter_slots(text, zone, after, 1)
        return
    theirs = croniter_slots(text, zone, after, len(ours))
    assert [s for s in ours if keep(s)] == [s for s in theirs if keep(s)]


@SETTINGS
@given(text=agreed_crons(), zone=st.sampled_from(ZONES_WITHOUT_DST), after=instants)
def test_next_slots_agree_with_croniter_in_zones_without_dst(text: str, zone: str, after: datetime) -> None:
    note(f"cron: {text!r} in {zone}")
    assert_slots_agree(text, zone, after)


def changeovers_around(zone: str, t: datetime) -> tuple[datetime, datetime]:
    """The last UTC-offset change at or before `t` and the first after it (a year's search each way)."""
    tz = ZoneInfo(zone)

    def offset(u: datetime) -> timedelta:
        return u.astimezone(tz).utcoffset()

    def changeover(step: timedelta) -> datetime:
        here, there = t, t
        for _ in range(370):
            there = here + step
            if offset(there) != offset(t):
                break
            here = there
        else:
            return there  # none within a year
        while abs(there - here) > timedelta(seconds=1):  # bisect to the second
            middle = here + (there - here) / 2
            here, there = (middle, there) if offset(middle) == offset(t) else (here, middle)
        return max(here, there)

    return changeover(timedelta(days=-1)), changeover(timedelta(days=1))


@SETTINGS
@given(text=agreed_crons(), zone=st.sampled_from(ZONES_WITH_DST), after=instants)
def test_next_slots_agree_with_croniter_between_dst_changeovers(text: str, zone: str, after: datetime) -> None:
    previous, following = changeovers_around(zone, after)
    note(f"cron: {text!r} in {zone}, changeovers: {previous} and {following}")
    start = max(after, previous + CHANGEOVER_MARGIN)
    assert_slots_agree(text, zone, start, keep=lambda slot: slot < following - CHANGEOVER_MARGIN)


@pytest.mark.parametrize("macro", sorted(MACROS))
@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
def test_macros_agree_with_croniter(macro: str, zone: str) -> None:
    assert_slots_agree(macro, zone, datetime(2026, 2, 27, 13, 45, tzinfo=UTC))


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


KNOWN_DIFFERENCES = [
    pytest.param("30 2 * * *", "Europe/Berlin", at(2026, 10, 24, 12), id="fall-back-fires-twice-in-croniter"),
    pytest.param("*/30 2 * * *", "Europe/Berlin", at(2026, 3, 28, 12), id="skipped-wildcard-hour-fires-in-croniter"),
    pytest.param("0 0 * * 5L", "UTC", at(2026, 1, 1), id="last-weekday-spelt-L5-in-croniter"),
    pytest.param("0 0 LW * *", "UTC", at(2026, 1, 1), id="LW-rejected-by-croniter"),
    pytest.param("0 0 1,15W * *", "UTC", at(2026, 1, 1), id="W-in-a-list-rejected-by-croniter"),
    pytest.param("0 0 31W * *", "UTC", at(2026, 1, 1), id="31W-in-short-months"),
    pytest.param("0 0 3W * 1", "UTC", at(2026, 1, 1), id="W-or-weekday"),
    pytest.param("0 0 1 * 5#2", "UTC", at(2026, 1, 1), id="day-or-nth-weekday"),
    pytest.param("0 0 * * 1,5#2", "UTC", at(2026, 1, 1), id="nth-weekday-in-a-list-rejected-by-croniter"),
    pytest.param("0 0 * * MON/2", "UTC", at(2026, 1, 1), id="weekday-step-reaches-sunday"),
    pytest.param("0 0 1,* * 0", "UTC", at(2026, 1, 1), id="star-after-the-first-item"),
    pytest.param("0 0 1,*/2 * 0-6", "UTC", at(2026, 1, 1), id="star-step-after-the-first-item"),
    pytest.param("0 0 2-31,L * *", "UTC", at(2026, 1, 28), id="30-days-and-L-are-every-day-in-croniter"),
    pytest.param("0 0 * FEB-FEB *", "UTC", at(2026, 3, 1), id="one-value-range-is-every-value-in-croniter"),
]


@pytest.mark.parametrize(("text", "zone", "after"), KNOWN_DIFFERENCES)
def test_the_known_differences_are_still_there(text: str, zone: str, after: datetime) -> None:
    ours = our_slots(text, zone, after, SLOTS)
    assert len(ours) == SLOTS
    try:
        theirs = croniter_from(text, zone, after)
        assert [theirs.get_next(datetime).astimezone(UTC) for _ in ours] != ours
    except CroniterError:
        pass  # croniter refuses it, or finds no date
