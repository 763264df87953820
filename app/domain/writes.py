"""Writing schedule rows: a new schedule with its first slot, a conditional update that refuses
to overwrite a newer version (optimistic locking), and the audit entry of each change."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.actors import Actor
from app.domain.clock import Clock
from app.domain.errors import Conflict
from app.domain.ids import new_id
from app.domain.schedules import audit_snapshot, next_run_after
from app.persistence.models import AuditEntry, ScheduledJob

#: The fields whose change moves a schedule's next slot.
SCHEDULE_FIELDS = frozenset(
    {"schedule_type", "schedule_value", "timezone", "start_at", "end_at", "max_runs", "is_enabled"}
)


class ScheduleWriter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def insert(
        self, session: AsyncSession, job_id: str, clean: dict[str, Any], actor: Actor, existing: ScheduledJob | None
    ) -> ScheduledJob:
        """Write a new schedule of the validated definition ``clean`` (over ``existing``, a
        deleted one of the same scope made again, if given)."""
        row = self.new_row(job_id, clean, actor, existing=existing)
        if existing is None:
            job = ScheduledJob(**row)
            session.add(job)
        else:
            job = existing
            for field, value in row.items():
                setattr(job, field, value)
        await session.flush()
        self.audit(session, job, "create", actor, None, audit_snapshot(job))
        return job

    def new_row(
        self, job_id: str, clean: dict[str, Any], actor: Actor, *, existing: ScheduledJob | None
    ) -> dict[str, Any]:
        """Every column of a schedule of the validated definition ``clean``, with its first slot."""
        now = self.clock()
        row = {
            **clean,
            "id": job_id,
            "anchor_at": clean.get("start_at") or now.replace(microsecond=0),
            "run_count": 0,
            "version": existing.version + 1 if existing else 1,
            "created_by": actor.label,
            "updated_by": actor.label,
            "created_at": now if existing is None else existing.created_at,
            "updated_at": now,
            "deleted_at": None,
            "deleted_by": None,
            "paused_at": None,
            "paused_by": None,
            "pause_note": None,
            "last_run_at": None,
            "last_status": None,
        }
        if existing is not None:
            # A schedule made again keeps its record of past runs.
            row.update(last_run_at=existing.last_run_at, last_status=existing.last_status)
        row["next_run_at"] = next_run_after(SimpleNamespace(**row), now) if row["is_enabled"] else None
        return row

    async def apply(
        self,
        session: AsyncSession,
        job: ScheduledJob,
        clean: dict[str, Any],
        actor: Actor,
        expected_version: int | None,
    ) -> None:
        values = {k: v for k, v in clean.items() if getattr(job, k) != v}
        await self.write(session, job, values, actor, expected_version=expected_version)

    async def write(
        self,
        session: AsyncSession,
        job: ScheduledJob,
        values: dict[str, Any],
        actor: Actor,
        expected_version: int | None,
    ) -> None:
        """One conditional UPDATE: refuses to overwrite a newer version (optimistic locking)."""
        seen = job.version
        # Detach first: the conditional UPDATE below is the only write, not an ORM flush.
        session.expunge(job)
        if expected_version is not None and expected_version != seen:
            raise Conflict(conflict_message(job))
        now = self.clock()
        values = dict(values)
        if values.get("is_enabled") is True:
            values.setdefault("paused_at", None)
            values.setdefault("paused_by", None)
            values.setdefault("pause_note", None)
        for field, value in values.items():
            setattr(job, field, value)
        if SCHEDULE_FIELDS & set(values) or "deleted_at" in values:
            if "start_at" in values:
                job.anchor_at = job.start_at or job.anchor_at
            live = job.is_enabled and job.deleted_at is None
            job.next_run_at = next_run_after(job, now) if live else None
        job.version = seen + 1
        job.updated_by = actor.label
        job.updated_at = now
        stmt = (
            sa.update(ScheduledJob)
            .where(ScheduledJob.id == job.id, ScheduledJob.version == seen)
            .values(
                {
                    **{f: getattr(job, f) for f in (*values, "next_run_at", "anchor_at")},
                    "version": seen + 1,
                    "updated_by": actor.label,
                    "updated_at": now,
                }
            )
            .execution_options(synchronize_session=False)
        )
        # An UPDATE returns a CursorResult (with rowcount); the session's signature says Result.
        result = cast(sa.CursorResult[Any], await session.execute(stmt))
        if result.rowcount != 1:
            raise Conflict(conflict_message(job))

    def audit(
        self,
        session: AsyncSession,
        job: ScheduledJob,
        action: str,
        actor: Actor,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        row = {"id": job.id, "tenant_id": job.tenant_id, "organization_id": job.organization_id}
        session.add(AuditEntry(**audit_row(row, action, actor, before, after, self.clock())))


def audit_row(
    job: dict[str, Any],
    action: str,
    actor: Actor,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "job_id": job["id"],
        "tenant_id": job["tenant_id"],
        "organization_id": job["organization_id"],
        "action": action,
        "actor": actor.label,
        "before": before,
        "after": after,
        "created_at": at,
    }


def conflict_message(job: ScheduledJob) -> str:
    return (
        f"'{job.name}' was changed by someone else since you opened it. "
        "Reload to see the latest version, then make your change again."
    )
