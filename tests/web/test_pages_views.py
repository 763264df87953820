"""What the pages show, as pure functions: relative times, durations, the preview, the runs chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from app.web.formatting import TimeFormat, audit_changes, duration, runs_chart, schedule_preview
from app.web.forms import JobForm

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=10), "in a few seconds"),
        (timedelta(seconds=-10), "just now"),
        (timedelta(minutes=1), "in 1 minute"),
        (timedelta(minutes=-14), "14 minutes ago"),
        (timedelta(hours=2, minutes=10), "in 2 hours"),
        (timedelta(days=-3), "3 days ago"),
        (timedelta(days=70), "in 2 months"),
        (timedelta(days=-800), "2 years ago"),
    ],
)
def test_relative_times(delta, text):
    assert TimeFormat(NOW).relative(NOW + delta) == text


def test_absolute_times_are_in_the_schedules_zone_with_its_abbreviation():
    fmt = TimeFormat(NOW)
    assert fmt.local(NOW, "Europe/Warsaw") == "2026-03-28 13:00:00 CET"
    assert fmt.local(NOW + timedelta(days=1), "Europe/Warsaw") == "2026-03-29 14:00:00 CEST"  # after the change
    assert fmt.local(None, "UTC") == "—"
    assert fmt.local(NOW, "Not/AZone") == "2026-03-28 12:00:00 UTC"  # never breaks a page


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, "—"), (0, "0 ms"), (999, "999 ms"), (1500, "1.5 s"), (125_000, "2 min 5 s"), (7_500_000, "2 h 5 min")],
)
def test_durations(ms, text):
    assert duration(ms) == text


def test_the_preview_crosses_a_dst_change_in_the_schedules_zone():
    preview = schedule_preview("cron", "30 2 * * *", "Europe/Warsaw", now=NOW)
    assert preview.error is None and preview.description == "At 02:30"
    # 2026-03-29 02:30 does not exist in Warsaw: it fires at the first instant after the gap.
    local = [TimeFormat(NOW).local(slot, "Europe/Warsaw") for slot in preview.slots]
    assert local[:2] == ["2026-03-29 03:00:00 CEST", "2026-03-30 02:30:00 CEST"]


def test_the_preview_reports_errors_for_the_field_at_fault():
    assert schedule_preview("cron", "* * *", "UTC", now=NOW).error_field == "schedule_value"
    assert schedule_preview("cron", "@daily", "Mars/Base", now=NOW).error_field == "timezone"
    assert schedule_preview("interval", "1s", "UTC", now=NOW, min_interval_seconds=10).error_field == "schedule_value"
    assert schedule_preview("cron", "", "UTC", now=NOW).description is None  # nothing typed yet: no error


def test_the_preview_respects_start_and_end():
    preview = schedule_preview("interval", "1d", "UTC", now=NOW, start_at="2026-04-01T06:00", end_at="2026-04-02T23:00")
    assert [s.isoformat() for s in preview.slots] == ["2026-04-01T06:00:00+00:00", "2026-04-02T06:00:00+00:00"]


def test_the_chart_scales_durations_and_keeps_runs_without_one_visible():
    runs = [
        SimpleNamespace(
            id=str(i), created_at=NOW + timedelta(minutes=i), scheduled_for=NOW, status=status, duration_ms=ms
        )
        for i, (status, ms) in enumerate([("succeeded", 500), ("failed", 1000), ("skipped", None)])
    ]
    chart = runs_chart(reversed(runs), TimeFormat(NOW), "UTC")  # newest first, as the history comes
    assert [bar.status for bar in chart.bars] == ["succeeded", "failed", "skipped"]  # oldest on the left
    assert chart.bars[1].height == 2 * chart.bars[0].height and chart.bars[2].height == 3
    assert chart.max_label == "1.0 s" and "1 failed" in chart.summary
    assert runs_chart([], TimeFormat(NOW), "UTC") is None


def test_audit_changes_list_only_what_differs():
    changes = audit_changes(
        {"name": "A", "is_enabled": True, "max_runs": None}, {"name": "B", "is_enabled": False, "max_runs": None}
    )
    assert [(c.label, c.before, c.after) for c in changes] == [("Name", "A", "B"), ("Enabled", "yes", "no")]
    assert audit_changes(None, {"name": "A"}) == []


def test_form_errors_for_target_fields_land_on_the_one_target_control():
    form = JobForm.blank(SimpleNamespace(is_superadmin=True)).with_errors(
        {"target_command": "unknown command 'x'", "id": "taken", "name": "name is required"}
    )
    assert form.errors == {"target": "unknown command 'x'", "name": "name is required"}
    assert form.general == ["taken"]
