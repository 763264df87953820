"""Human descriptions and the preview panel."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.engine import Preview, ScheduleError, describe, preview

UTC = UTC


@pytest.mark.parametrize(
    ("schedule_type", "value", "text"),
    [
        ("cron", "*/15 * * * *", "Every 15 minutes"),
        ("cron", "30 2 * * *", "At 02:30"),
        ("cron", "0 * * * *", "Every hour"),
        ("cron", "@hourly", "Every hour"),
        ("cron", "@daily", "At 00:00"),
        ("cron", "@weekly", "At 00:00, only on Sunday"),
        ("cron", "0 0 * * 7", "At 00:00, only on Sunday"),
        ("cron", "0 9 * * mon-fri", "At 09:00, Monday through Friday"),
        ("cron", "0 0 L * *", "At 00:00, on the last day of the month"),
        ("cron", "0 0 LW * *", "At 00:00, on the last weekday of the month"),
        ("cron", "0 0 15W * *", "At 00:00, on the weekday nearest day 15 of the month"),
        ("cron", "0 0 * * 5L", "At 00:00, on the last Friday of the month"),
        ("cron", "0 0 * * MON#2", "At 00:00, on the second Monday of the month"),
        ("cron", "0 0 13 * 5", "At 00:00, on day 13 of the month, or on Friday"),
        ("cron", "*/10 * * * * *", "Every 10 seconds"),
        ("cron", "0 30 2 * * *", "At 02:30"),
        ("cron", "0 0 0 * * 0005", "At 00:00, only on Friday"),  # not mistaken for a year
        ("interval", "30s", "Every 30 seconds"),
        ("interval", "1m", "Every minute"),
        ("interval", "15m", "Every 15 minutes"),
        ("interval", "1h30m", "Every 1 hour 30 minutes"),
        ("interval", "90m", "Every 1 hour 30 minutes"),
        ("interval", "2h", "Every 2 hours"),
        ("interval", "1d", "Every day"),
        ("interval", "1d12h", "Every 1 day 12 hours"),
        ("interval", "2h30m15s", "Every 2 hours 30 minutes 15 seconds"),
        ("interval", "5s", "Every 5 seconds"),  # describing does not apply the minimum
    ],
)
def test_describe(schedule_type: str, value: str, text: str) -> None:
    assert describe(schedule_type, value) == text


@pytest.mark.parametrize(
    ("schedule_type", "value", "field"),
    [("cron", "61 * * * *", "schedule_value"), ("interval", "soon", "schedule_value"), ("at", "now", "schedule_type")],
)
def test_describe_rejects_invalid_schedules(schedule_type: str, value: str, field: str) -> None:
    with pytest.raises(ScheduleError) as excinfo:
        describe(schedule_type, value)
    assert excinfo.value.field == field


def test_preview_shows_slots_in_the_schedules_zone() -> None:
    result = preview("cron", "30 2 * * *", "Europe/Berlin", after=datetime(2026, 3, 28, 12, tzinfo=UTC), count=3)
    berlin = ZoneInfo("Europe/Berlin")
    assert result == Preview(
        description="At 02:30",
        slots=[
            datetime(2026, 3, 29, 3, 0, tzinfo=berlin),  # 02:30 does not exist that night
            datetime(2026, 3, 30, 2, 30, tzinfo=berlin),
            datetime(2026, 3, 31, 2, 30, tzinfo=berlin),
        ],
    )
    assert all(s.tzinfo == berlin for s in result.slots)


def test_preview_of_an_interval_uses_the_anchor() -> None:
    anchor = datetime(2026, 1, 1, 10, 0, 7, tzinfo=UTC)
    result = preview("interval", "1h30m", after=datetime(2026, 1, 1, 10, 0, 7, tzinfo=UTC), count=2, anchor=anchor)
    assert result.description == "Every 1 hour 30 minutes"
    assert result.slots == [datetime(2026, 1, 1, 11, 30, 7, tzinfo=UTC), datetime(2026, 1, 1, 13, 0, 7, tzinfo=UTC)]


def test_preview_applies_the_minimum_interval() -> None:
    with pytest.raises(ScheduleError, match="^interval must be at least 1m$"):
        preview("interval", "30s", after=datetime(2026, 1, 1, tzinfo=UTC), min_interval_seconds=60)
