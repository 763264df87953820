"""What the pages show: times in a schedule's zone, relative times, durations, labels, the runs chart.

Pure functions of their inputs (and a ``now`` handed in), so templates stay declarative and
these are easy to test.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app import engine
from app.domain.instants import accepted_instant
from app.domain.vocabulary import RunStatus, Trigger

UTC = UTC

#: Keyed by the plain status strings that rows and query parameters hold (a RunStatus is one).
STATUS_LABELS: dict[str, str] = {
    RunStatus.QUEUED: "Queued",
    RunStatus.RUNNING: "Running",
    RunStatus.SUCCEEDED: "Succeeded",
    RunStatus.FAILED: "Failed",
    RunStatus.TIMED_OUT: "Timed out",
    RunStatus.SKIPPED: "Skipped",
    RunStatus.MISSED: "Missed",
    RunStatus.CANCELLED: "Cancelled",
}
TRIGGER_LABELS: dict[str, str] = {
    Trigger.SCHEDULED: "Scheduled",
    Trigger.MANUAL: "Manual",
    Trigger.CATCH_UP: "Catch-up",
    Trigger.RETRY: "Retry",
}
SCOPE_LABELS = {"system": "System", "tenant": "Tenant", "organization": "Organization"}
CATCH_UP_LABELS = {
    "latest": "Run once for the newest missed slot",
    "skip": "Skip missed slots",
    "all": "Run every missed slot (within the window)",
}
OVERLAP_LABELS = {"allow": "Allow overlapping runs", "skip": "Skip a slot while the previous run is active"}
AUDIT_LABELS = {
    "create": "Created",
    "update": "Edited",
    "delete": "Deleted",
    "undo": "Undid the last change",
    "restore": "Restored from Deleted",
    "enable": "Enabled",
    "disable": "Disabled",
    "trigger": "Ran now",
}
FIELD_LABELS = {
    "name": "Name",
    "description": "Description",
    "scope_type": "Scope",
    "tenant_id": "Tenant",
    "organization_id": "Organization",
    "schedule_type": "Schedule type",
    "schedule_value": "Schedule",
    "timezone": "Timezone",
    "target_type": "Target type",
    "target_queue": "Queue",
    "target_command": "Command",
    "target_payload": "Payload",
    "require_feature": "Required tenant feature",
    "is_enabled": "Enabled",
    "catch_up_policy": "Catch-up",
    "catch_up_window_seconds": "Catch-up window (s)",
    "overlap_policy": "Overlap",
    "jitter_seconds": "Jitter (s)",
    "timeout_seconds": "Timeout (s)",
    "max_retries": "Retries",
    "retry_backoff_seconds": "Retry backoff (s)",
    "start_at": "Start",
    "end_at": "End",
    "max_runs": "Max runs",
    "source_type": "Source",
    "source_module": "Module",
    "pause_note": "Pause note",
}
#: Kept in audit entries (an undo brings a pause back with them), not listed as changes: the
#: entry itself says who paused and when.
UNSHOWN_CHANGES = frozenset({"paused_by", "paused_at"})


def zone(name: str | None) -> ZoneInfo:
    try:
        return engine.validate_timezone(name or "UTC")
    except engine.ScheduleError:
        return ZoneInfo("UTC")


def utc_fallback(dt: datetime) -> datetime:
    """``dt`` in UTC, or as stored when even that overflows (see ``TimeFormat.local``)."""
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return dt


class TimeFormat:
    """Formats instants for people, relative to one ``now`` per request."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def local(self, dt: datetime | None, tz: str | None = "UTC") -> str:
        """Absolute, in the schedule's own zone, with the zone's abbreviation: 2026-06-01 14:00:00 CEST."""
        if dt is None:
            return "—"
        try:
            return dt.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")
        except (OverflowError, ValueError):
            # A stored instant at the edge of datetime's range (year 9999 in a zone east of
            # UTC) has no local time: show it in UTC rather than fail the page.
            return utc_fallback(dt).strftime("%Y-%m-%d %H:%M:%S UTC")

    def time_of_day(self, dt: datetime, tz: str | None = "UTC") -> str:
        """To the millisecond, in the schedule's zone: 14:00:01.234 (a run's log lines)."""
        try:
            local = dt.astimezone(zone(tz))
        except (OverflowError, ValueError):
            local = utc_fallback(dt)
        return local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}"

    @staticmethod
    def iso(dt: datetime | None) -> str:
        return utc_fallback(dt).isoformat() if dt else ""

    def relative(self, dt: datetime | None) -> str:
        if dt is None:
            return ""
        seconds = (dt - self.now).total_seconds()
        span = abs(seconds)
        if span < 45:
            return "in a few seconds" if seconds > 0 else "just now"
        for limit, size, unit in (  # noqa: B007  (the unit the loop stops at is used below)
            (5400, 60, "minute"),
            (129_600, 3600, "hour"),
            (3_888_000, 86_400, "day"),
            (31_536_000, 2_592_000, "month"),
        ):
            if span < limit:
                break
        else:
            size, unit = 31_536_000, "year"
        count = max(1, round(span / size))
        text = f"{count} {unit}{'s' if count != 1 else ''}"
        return f"in {text}" if seconds > 0 else f"{text} ago"


def duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def describe_schedule(schedule_type: str, value: str) -> str:
    """The human description, or the raw value when (say) a newer parser rule rejects an old row."""
    try:
        return engine.describe(schedule_type, value)
    except engine.ScheduleError:
        return value


def scope_label(scope_type: str, tenant_id: str | None, organization_id: str | None) -> str:
    if scope_type == "organization":
        return f"Organization {organization_id} ({tenant_id})"
    if scope_type == "tenant":
        return f"Tenant {tenant_id}"
    return "System"


def target_name(job: Any) -> str:
    return (job.target_queue if job.target_type == "queue" else job.target_command) or ""


def target_label(job: Any, registry: Any) -> str:
    target = registry.get(job.target_type, target_name(job))
    return target.label if target else target_name(job)


def pretty_json(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def shown_value(field: str, value: Any) -> str:
    """A configuration value as one line of text, for the audit trail."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    before: str
    after: str


def audit_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """Fields whose value differs between two snapshots (none for a create or a delete)."""
    if not before or not after:
        return []
    return [
        Change(
            field,
            FIELD_LABELS.get(field, field),
            shown_value(field, before.get(field)),
            shown_value(field, after.get(field)),
        )
        for field in after
        if before.get(field) != after.get(field) and field not in UNSHOWN_CHANGES
    ]


# ----- the runs chart ------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, CHART_TOP, STUB = 600, 140, 16, 3


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    status: str
    title: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    baseline: float
    max_label: str
    summary: str


def runs_chart(runs: Iterable[Any], fmt: TimeFormat, tz: str) -> Chart | None:
    """Bars of run durations, oldest on the left, coloured by status (CSS classes per status).

    Runs without a duration (queued, running, skipped, missed) get a short stub so they still show.
    """
    runs = sorted(runs, key=lambda r: (r.created_at, r.id))
    if not runs:
        return None
    longest = max((r.duration_ms or 0 for r in runs), default=0) or 1
    slot = CHART_WIDTH / max(len(runs), 20)
    gap = min(4.0, slot * 0.25)
    usable = CHART_HEIGHT - CHART_TOP
    bars = []
    for index, run in enumerate(runs):
        height = max(STUB, usable * (run.duration_ms or 0) / longest)
        status = STATUS_LABELS.get(run.status, run.status)
        title = f"{status} · {duration(run.duration_ms)} · {fmt.local(run.scheduled_for, tz)}"
        bars.append(
            Bar(
                round(index * slot + gap / 2, 1),
                round(CHART_HEIGHT - height, 1),
                round(slot - gap, 1),
                round(height, 1),
                run.status,
                title,
            )
        )
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    summary = ", ".join(
        f"{n} {STATUS_LABELS.get(s, s).lower()}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    return Chart(
        bars,
        CHART_WIDTH,
        CHART_HEIGHT,
        CHART_HEIGHT,
        duration(longest),
        f"Durations of the last {len(runs)} runs: {summary}.",
    )


# ----- the live schedule preview ------------------------------------------------------------

PREVIEW_SLOTS = 5


@dataclass(frozen=True)
class SchedulePreview:
    timezone: str
    description: str | None = None
    slots: tuple[datetime, ...] = ()
    #: The field the error is about (schedule_value, timezone, ...) and its message.
    error_field: str | None = None
    error: str | None = None


class _OutOfRange(Exception):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message


def _instant(text: str | None, tz: ZoneInfo, field: str) -> datetime | None:
    """A form's date-time (read in the schedule's zone), or None when empty or unreadable:
    the preview ignores what the form will report on submit anyway, but not a date outside the
    accepted range, whose slots it could not compute."""
    try:
        value = datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return _accepted(value, tz, field)


def _accepted(value: datetime | None, tz: ZoneInfo, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return accepted_instant(value, tz)
    except ValueError as exc:
        raise _OutOfRange(field, f"{FIELD_LABELS.get(field, field.capitalize())} {exc}") from None


def schedule_preview(
    schedule_type: str,
    value: str,
    tz: str,
    *,
    now: datetime,
    start_at: str | None = None,
    end_at: str | None = None,
    anchor: datetime | None = None,
    min_interval_seconds: int = 10,
) -> SchedulePreview:
    """What a schedule typed into the form means: its description and next slots, or the error."""
    tz = (tz or "").strip() or "UTC"
    if not (value or "").strip():
        return SchedulePreview(tz)
    try:
        zone_info = engine.validate_timezone(tz)
        start, end = _instant(start_at, zone_info, "start_at"), _instant(end_at, zone_info, "end_at")
        anchor = _accepted(anchor, zone_info, "anchor")
        schedule = engine.parse_schedule(
            schedule_type,
            value,
            zone_info.key,
            anchor=start or anchor or now.replace(microsecond=0),
            start_at=start,
            end_at=end,
            min_interval_seconds=min_interval_seconds,
        )
    except engine.ScheduleError as exc:
        return SchedulePreview(tz, error_field=exc.field, error=exc.message)
    except _OutOfRange as exc:
        return SchedulePreview(tz, error_field=exc.field, error=exc.message)
    slots = tuple(schedule.next_slots(now, PREVIEW_SLOTS))
    return SchedulePreview(zone_info.key, describe_schedule(schedule.type, schedule.value), slots)
