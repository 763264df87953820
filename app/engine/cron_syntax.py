"""Validate a cron expression and rewrite it into the form cronsim evaluates.

cronsim's own errors say only "Bad minute", so every check happens here first,
with a message that names the field and the offending text. The output is
unambiguous for cronsim: names become numbers, stepped ranges become explicit
lists, and `nW` terms (which cronsim lacks) are pulled out for cron.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ScheduleError, require_text, shown

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MONTH_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAY_NAMES = "SUN MON TUE WED THU FRI SAT".split()

_ALLOWED = re.compile(r"[0-9A-Za-z*,/#\- \t]*")
_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    first_name_value: int = 0
    max_step: int = 0

    def value(self, text: str, term: str) -> int:
        if text == "":
            raise self.error(f"missing number in {shown(term)}")
        if _NUMBER.fullmatch(text):
            number = int(text)
            if not self.low <= number <= self.high:
                raise self.error(f"{number} is out of range {self.low}-{self.high}")
            return number
        if text.upper() in self.names:
            return self.names.index(text.upper()) + self.first_name_value
        kind = {"month": "a number or month name", "day-of-week": "a number or day name"}
        raise self.error(f"{shown(text)} is not {kind.get(self.name, 'a number')}")

    def error(self, message: str) -> ScheduleError:
        return ScheduleError("schedule_value", f"{self.name} field: {message}")


SECOND = _Field("second", 0, 59, max_step=60)
MINUTE = _Field("minute", 0, 59, max_step=60)
HOUR = _Field("hour", 0, 23, max_step=24)
DAY = _Field("day-of-month", 1, 31, max_step=31)
MONTH = _Field("month", 1, 12, tuple(MONTH_NAMES), first_name_value=1, max_step=12)
WEEKDAY = _Field("day-of-week", 0, 7, tuple(DAY_NAMES), max_step=7)


@dataclass(frozen=True)
class CronSpec:
    expression: str  # 5 or 6 fields for cronsim (W days replaced, see cron.py)
    canonical: str  # the user's expression, tidied: for display and describe()
    nearest_weekdays: frozenset[int] = frozenset()  # n of each `nW` term
    has_last_day: bool = False  # an explicit `L` in day-of-month
    has_seconds: bool = False


def parse_cron(value: str) -> CronSpec:
    text = require_text(value, "cron expression")
    if text.startswith("@"):
        text = _expand_macro(text)
    if not _ALLOWED.fullmatch(text):
        bad = next(ch for ch in text if not _ALLOWED.fullmatch(ch))
        raise ScheduleError("schedule_value", f"unexpected character {shown(bad)}")
    parts = text.split()
    if len(parts) not in (5, 6):
        raise ScheduleError("schedule_value", f"expected 5 or 6 fields, got {len(parts)}")
    fields = [SECOND] * (len(parts) == 6) + [MINUTE, HOUR, DAY, MONTH, WEEKDAY]
    parsed = [_parse_field(field, part) for field, part in zip(fields, parts)]
    canonical_days = parsed[-3][1].split(",")
    return CronSpec(
        expression=" ".join(m for m, _, _ in parsed),
        canonical=" ".join(c for _, c, _ in parsed),
        nearest_weekdays=frozenset(parsed[-3][2]),
        has_last_day="L" in canonical_days,
        has_seconds=len(parts) == 6,
    )


def _expand_macro(text: str) -> str:
    macro = text.lower()
    if macro == "@reboot":
        raise ScheduleError("schedule_value", "@reboot is not supported")
    if macro not in MACROS:
        known = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
        raise ScheduleError("schedule_value", f"unknown macro {shown(text)} (use one of {known})")
    return MACROS[macro]


def _parse_field(field: _Field, text: str) -> tuple[str, str, list[int]]:
    """Return (text for cronsim, canonical text, W days) for one field."""
    machine, canonical, nearest = [], [], []
    for term in text.split(","):
        if term == "":
            raise field.error(f"empty item in list {shown(text)}")
        if field is DAY and _is_nearest_weekday(term):
            day = field.value(term[:-1], term)
            nearest.append(day)
            # cronsim cannot parse nW: it gets an `L` placeholder in the same
            # place (the first character decides DOM/DOW AND vs OR; an `L`
            # also stops cronsim's "day 31 in a short month" check from
            # misfiring). cron.py drops the placeholder and matches W itself.
            machine.append("L")
            canonical.append(f"{day}W")
            continue
        m, c = _parse_term(field, term)
        machine.append(m)
        canonical.append(c)
    return ",".join(machine), ",".join(canonical), nearest


def _is_nearest_weekday(term: str) -> bool:
    return len(term) > 1 and term[-1] in "wW" and term.upper() != "LW"


def _parse_term(field: _Field, term: str) -> tuple[str, str]:
    upper = term.upper()
    if field is DAY and upper in ("L", "LW"):
        return upper, upper
    if field is DAY and ("L" in upper or "W" in upper):
        raise field.error(f"{shown(term)} is not supported (use L, LW or a day such as 15W)")
    if field is WEEKDAY and "#" in term:
        return _parse_nth_weekday(term)
    if field is WEEKDAY and upper == "L":
        raise field.error("'L' needs a day before it, e.g. 5L for the last Friday")
    if field is WEEKDAY and upper.endswith("L"):
        day = field.value(term[:-1], term)
        return f"{day}L", f"{_tidy(field, term[:-1])}L"
    if "/" in term:
        return _parse_step(field, term)
    if term == "*":
        return "*", "*"
    values = _parse_range(field, term)
    return _list(values), _tidy(field, term)


def _parse_nth_weekday(term: str) -> tuple[str, str]:
    day_text, _, nth_text = term.partition("#")
    day = WEEKDAY.value(day_text, term)
    if not _NUMBER.fullmatch(nth_text):
        what = "missing occurrence" if nth_text == "" else f"occurrence {shown(nth_text)} is not a number"
        raise WEEKDAY.error(f"{what} in {shown(term)} (use 1-5, e.g. MON#2)")
    nth = int(nth_text)
    if not 1 <= nth <= 5:
        raise WEEKDAY.error(f"occurrence {nth} in {shown(term)} is out of range 1-5")
    return f"{day}#{nth}", f"{_tidy(WEEKDAY, day_text)}#{nth}"


def _parse_step(field: _Field, term: str) -> tuple[str, str]:
    base, _, step_text = term.partition("/")
    if not _NUMBER.fullmatch(step_text):
        what = "missing step" if step_text == "" else f"step {shown(step_text)} is not a number"
        raise field.error(f"{what} in {shown(term)}")
    if field is WEEKDAY and base.upper().endswith("L"):
        raise field.error(f"a step cannot follow L in {shown(term)}")
    step = int(step_text)
    if step < 1:
        raise field.error("step must be at least 1")
    if step > field.max_step:
        raise field.error(f"step {step} is out of range 1-{field.max_step}")
    if base == "*":
        # Kept as written: a leading `*` matters to cronsim (DOM/DOW AND-ing
        # and the DST rule), and cronsim expands `*/n` exactly as cron does.
        return f"*/{step}", f"*/{step}"
    values = _parse_range(field, base)
    if "-" not in base:
        # `5/15` means 5-max/15, as in cronie. (cronsim also reads `5-5/15`
        # that way; expanding the list here avoids that.)
        values = range(values[0], field.high + 1)
    return _list(values[::step]), f"{_tidy(field, base)}/{step}"


def _parse_range(field: _Field, text: str) -> range:
    if "-" not in text:
        value = field.value(text, text)
        return range(value, value + 1)
    low_text, _, high_text = text.partition("-")
    low, high = field.value(low_text, text), field.value(high_text, text)
    if high < low:
        raise field.error(f"range {text} goes backwards")
    return range(low, high + 1)


def _tidy(field: _Field, text: str) -> str:
    """Canonical spelling of a value or range: names upper-case, no leading zeros."""
    return "-".join(p.upper() if p.upper() in field.names else str(int(p)) for p in text.split("-"))


def _list(values: range) -> str:
    return ",".join(str(v) for v in values)
