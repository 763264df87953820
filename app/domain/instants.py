"""The dates and times a person may give: one accepted range for every field and parameter.

Python's datetime ends at years 1 and 9999, and a zone's offset (Pacific/Kiritimati is UTC+14)
or a few slots of arithmetic past an instant near either end leaves that range: such a value
would be accepted and then crash whatever formats or computes with it. So every instant that
comes in (schedule start and end, run-list filters, preview anchors, ``--after``) must lie in
1970-01-01 .. 9000-12-31 UTC, which leaves a thousand years of headroom on the far side and
starts at the interval grid's epoch on the near one. Stored values are not re-checked: the
pages format whatever is stored without failing (``app.web.formatting``).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

UTC = UTC
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 12, 31, 23, 59, 59, tzinfo=UTC)
OUT_OF_RANGE = "must be between 1970-01-01 and 9000-12-31 (UTC)"
UNREADABLE = "must be a date and time like 2026-12-01T09:00 (ISO 8601)"


def accepted_instant(value: datetime, zone: tzinfo = UTC) -> datetime:
    """``value`` as aware UTC (a naive one is read in ``zone``); ValueError with the message to
    show when it is outside the accepted range."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=zone)
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):  # the offset pushes it past year 1 or 9999
        raise ValueError(OUT_OF_RANGE) from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(OUT_OF_RANGE)
    return utc


def parse_instant(text: str, zone: tzinfo = UTC) -> datetime:
    """An ISO 8601 date and time typed by a person, checked like ``accepted_instant``."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(UNREADABLE) from None
    return accepted_instant(value, zone)
