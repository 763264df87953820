"""When the local poller should wake next: a schedule's next slot or a queued run's time."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.vocabulary import RunStatus
from app.persistence.models import ScheduledJob, ScheduledJobRun


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
            sa.select(sa.func.min(ScheduledJobRun.not_before)).where(
                ScheduledJobRun.status == RunStatus.QUEUED, ScheduledJobRun.not_before > queued_after
            )
        )
    candidates = [t for t in (slot, queued) if t is not None]
    return min(candidates) if candidates else None
