"""Taking queued runs whose time has come (``not_before`` passed) for execution."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.execution import LEASE, RUN_COLUMNS
from app.persistence.models import ScheduledJob, ScheduledJobRun


async def take_runnable(
    session: AsyncSession, now: datetime, *, limit: int, on_sqlite: bool, worker: str
) -> list[sa.Row]:
    """queued -> running for up to ``limit`` runs, atomically; returns their rows, oldest first."""
    pick = (
        sa.select(ScheduledJobRun.id)
        .where(ScheduledJobRun.status == "queued", ScheduledJobRun.not_before <= now)
        # In the order of the in-flight index (status, not_before), so that taking stops after
        # ``limit`` rows: a tie-break on id would sort every queued run (a burst's ten thousand
        # share one instant) on each take.
        .order_by(ScheduledJobRun.not_before)
        .limit(limit)
    )
    runs = ScheduledJobRun.__table__
    stmt = runs.update().values(status="running", started_at=now, lease_expires_at=now + LEASE, queue_job_id=worker)
    if on_sqlite:
        # One writer at a time: nobody can take these between the pick and the update.
        stmt = stmt.where(runs.c.id.in_(pick.scalar_subquery()))
    else:
        # Locked in a materialized CTE, evaluated once: inside ``UPDATE ... WHERE id IN
        # (subquery)`` PostgreSQL may re-run a LIMIT ... SKIP LOCKED subquery and take more.
        picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        stmt = stmt.where(runs.c.id == picked.c.id)
    # Plain rows, not ORM objects: a burst takes thousands of runs a second.
    taken = (await session.execute(stmt.where(runs.c.status == "queued").returning(*RUN_COLUMNS))).all()
    return sorted(taken, key=lambda run: (run.not_before, run.id))


async def next_wakeup(session: AsyncSession, *, queued_after: datetime | None) -> datetime | None:
    """The earliest instant something becomes due: a schedule's next slot, or (unless
    ``queued_after`` is None) a queued run whose time comes after ``queued_after`` (a retry's
    backoff, jitter). Queued runs whose time has come are the starter's, not a reason to wake."""
    slot = await session.scalar(
        sa.select(sa.func.min(ScheduledJob.next_run_at)).where(
            ScheduledJob.is_enabled, ScheduledJob.deleted_at.is_(None)
        )
    )
    queued = None
    if queued_after is not None:
        queued = await session.scalar(
            sa.select(sa.func.min(ScheduledJobRun.not_before))
            .where(ScheduledJobRun.status == "queued", ScheduledJobRun.not_before > queued_after)
        )
    candidates = [t for t in (slot, queued) if t is not None]
    return min(candidates) if candidates else None
