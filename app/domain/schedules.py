"""Schedules as stored rows: snapshots for audit and the next slot after an instant."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any, Protocol

from app import engine
from app.domain.validation import FIELDS
from app.persistence.models import ScheduledJob


class ScopedRow(Protocol):
    """A schedule's id and scope ids, as a plain row or a ``ScheduledJob`` carries them."""

    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def organization_id(self) -> str | None: ...


class ScheduleDefinition(Protocol):
    """What a schedule's slots are computed from: a ``ScheduledJob``, a plain row of its columns
    or a new row's values."""

    @property
    def schedule_type(self) -> str: ...
    @property
    def schedule_value(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def anchor_at(self) -> datetime: ...
    @property
    def start_at(self) -> datetime | None: ...
    @property
    def end_at(self) -> datetime | None: ...


class CountedSchedule(ScheduleDefinition, Protocol):
    """A schedule definition and how many of its runs are allowed and made."""

    @property
    def max_runs(self) -> int | None: ...
    @property
    def run_count(self) -> int: ...


def to_schedule(job: ScheduleDefinition) -> engine.Schedule:
    # Validated on the way in; min_interval=1 so a later, stricter setting never strands a row.
    return engine.parse_schedule(
        job.schedule_type,
        job.schedule_value,
        job.timezone,
        anchor=job.anchor_at,
        start_at=job.start_at,
        end_at=job.end_at,
        min_interval_seconds=1,
    )


def next_run_after(job: CountedSchedule, after: datetime) -> datetime | None:
    """The first slot strictly after ``after``, or None once the schedule is exhausted."""
    if job.max_runs is not None and job.run_count >= job.max_runs:
        return None
    return to_schedule(job).next_after(after)


#: What an audit entry records beside the definition: who paused the schedule, when and why
#: (an undo of a delete or an enable brings the pause back with its note).
PAUSE_FIELDS = ("pause_note", "paused_by", "paused_at")


def snapshot(job: ScheduledJob | SimpleNamespace) -> dict[str, Any]:
    """The editable configuration as JSON-friendly values (undo, export), from a schedule or a
    new row's values."""
    return {field: _plain(getattr(job, field)) for field in FIELDS}


def audit_snapshot(job: ScheduledJob | SimpleNamespace) -> dict[str, Any]:
    """``snapshot`` and the pause (note, who, when): what an audit entry keeps of a version."""
    return {**snapshot(job), **{field: _plain(getattr(job, field)) for field in PAUSE_FIELDS}}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
