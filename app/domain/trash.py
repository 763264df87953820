"""The trash: deleted schedules, listed within the caller's scope and purged after the retention.

A deleted schedule keeps its row (and so its id), its runs and its audit trail: it can be
restored (``SchedulerService.restore``) until it has been deleted for longer than
``SCHEDULER_TRASH_RETENTION_DAYS``. Then the history cleanup removes it for good, with its runs
and audit entries, in small transactions so that neither database is held up (on SQLite a
write transaction holds the whole file: the poller waits for it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.access import DataAccess
from app.domain.actors import Actor
from app.domain.listing import COUNT_CAP, MAX_PAGE_SIZE, visible_to
from app.persistence.models import AuditEntry, ScheduledJob, ScheduledJobRun, ScheduledJobRunLog

log = logging.getLogger("mercato.trash")

#: Schedules removed per transaction (with their audit entries: a few each).
SCHEDULE_BATCH = 100
#: Runs removed per transaction.
RUN_BATCH = 5_000


@dataclass
class TrashQuery:
    """Deleted schedules, newest deletion first; ``search`` is part of the name or the id."""

    search: str | None = None
    page: int = 1
    page_size: int = 25


def purge_at(job: ScheduledJob, retention_days: int) -> datetime | None:
    """When a deleted schedule is removed for good (at the first cleanup after this instant)."""
    return job.deleted_at + timedelta(days=retention_days) if job.deleted_at else None


def trash_statements(query: TrashQuery, actor: Actor) -> tuple[sa.Select[tuple[ScheduledJob]], sa.Select[tuple[int]]]:
    """The page's rows and the bounded count of the deleted schedules ``actor`` sees."""
    conditions: list[sa.ColumnElement[bool]] = [ScheduledJob.deleted_at.is_not(None), visible_to(actor)]
    text = (query.search or "").strip()
    if "\x00" in text:
        conditions.append(sa.false())  # PostgreSQL refuses to even compare with NUL
    elif text:
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = sa.literal(f"%{escaped}%", sa.String)
        searched = (ScheduledJob.name, ScheduledJob.id)
        conditions.append(sa.or_(*(sa.func.lower(column).like(pattern, escape="\\") for column in searched)))
    size = max(1, min(query.page_size, MAX_PAGE_SIZE))
    rows = (
        sa.select(ScheduledJob)
        .where(*conditions)
        .order_by(ScheduledJob.deleted_at.desc(), ScheduledJob.id.desc())
        .limit(size)
        .offset((max(1, query.page) - 1) * size)
    )
    capped = sa.select(ScheduledJob.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
    return rows, sa.select(sa.func.count()).select_from(capped)


@dataclass(frozen=True)
class Purged:
    schedules: int = 0
    runs: int = 0
    audit_entries: int = 0


async def purge_deleted_schedules(
    data: DataAccess, *, days: int | None = None, batch: int = SCHEDULE_BATCH, run_batch: int = RUN_BATCH
) -> Purged:
    """Remove schedules deleted more than ``days`` ago (the trash retention by default) for good,
    with their audit entries and runs.

    Each batch of schedules goes in one short transaction with their audit entries, which is
    what makes a schedule restorable: once it commits, nothing can bring them back, and a
    restore that came first keeps its schedule (the delete asks again that it is still
    deleted). Their runs follow in batches of ``run_batch``. Only rows made before the cutoff
    go (all of a purged schedule's are older than its deletion), so a new schedule made under
    the same id in the meantime keeps its own.
    """
    days = days or data.settings.scheduler_trash_retention_days
    cutoff = data.clock() - timedelta(days=days)
    schedules = runs = audit_entries = 0
    while True:
        async with data.sessions.begin() as session:
            oldest = (
                sa.select(ScheduledJob.id)
                .where(ScheduledJob.deleted_at < cutoff)
                .order_by(ScheduledJob.deleted_at)
                .limit(batch)
                .scalar_subquery()
            )
            gone = (
                await session.execute(
                    sa.delete(ScheduledJob)
                    .where(ScheduledJob.id.in_(oldest), ScheduledJob.deleted_at < cutoff)
                    .returning(
                        ScheduledJob.id,
                        ScheduledJob.tenant_id,
                        ScheduledJob.organization_id,
                        ScheduledJob.deleted_at,
                        ScheduledJob.deleted_by,
                    )
                    .execution_options(synchronize_session=False)
                )
            ).all()
            ids = [row.id for row in gone]
            if ids:
                audit_entries += await _delete(
                    session,
                    sa.delete(AuditEntry).where(AuditEntry.job_id.in_(ids), AuditEntry.created_at < cutoff),
                )
        for row in gone:
            log.info(
                "purged deleted schedule %s (tenant %s, organization %s), deleted %s by %s",
                row.id,
                row.tenant_id or "-",
                row.organization_id or "-",
                row.deleted_at.isoformat(),
                row.deleted_by or "unknown",
            )
        schedules += len(ids)
        if ids:
            runs += await _delete_runs(data, ids, cutoff, run_batch)
        if len(gone) < batch:
            return Purged(schedules, runs, audit_entries)
        await asyncio.sleep(0)  # let the poller in between batches


async def _delete_runs(data: DataAccess, job_ids: list[str], cutoff: datetime, batch: int) -> int:
    total = 0
    while True:
        async with data.sessions.begin() as session:
            some = list(
                await session.scalars(
                    sa.select(ScheduledJobRun.id)
                    .where(ScheduledJobRun.job_id.in_(job_ids), ScheduledJobRun.created_at < cutoff)
                    .limit(batch)
                )
            )
            # A run's log lines go with it, in the same transaction.
            await _delete(session, sa.delete(ScheduledJobRunLog).where(ScheduledJobRunLog.run_id.in_(some)))
            deleted = await _delete(session, sa.delete(ScheduledJobRun).where(ScheduledJobRun.id.in_(some)))
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)


async def _delete(session: AsyncSession, statement: sa.Delete) -> int:
    # A DELETE returns a CursorResult (with rowcount); the session's signature says Result.
    result = cast(sa.CursorResult[Any], await session.execute(statement.execution_options(synchronize_session=False)))
    return result.rowcount
