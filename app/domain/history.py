"""Run history retention: delete expired runs in small batches so firing is never blocked."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domain.access import DataAccess
from app.domain.service import SchedulerService
from app.domain.vocabulary import ACTIVE
from app.persistence.models import ScheduledJobRun, ScheduledJobRunLog

log = logging.getLogger("mercato.history")

CLEANUP_JOB_ID = "scheduler:history-cleanup"
#: The built-in command that deletes expired runs (declared in ``app.targets.builtin``).
CLEANUP_COMMAND = "scheduler.history.cleanup"
BATCH = 5_000


async def delete_expired_runs(data: DataAccess, *, days: int | None = None, batch: int = BATCH) -> int:
    """Delete finished runs created more than ``days`` ago (the retention setting by default)."""
    days = days or data.settings.scheduler_history_retention_days
    cutoff = data.clock() - timedelta(days=days)
    total = 0
    while True:
        async with data.sessions.begin() as session:
            ids = list(
                await session.scalars(
                    sa.select(ScheduledJobRun.id)
                    .where(ScheduledJobRun.created_at < cutoff, ScheduledJobRun.status.not_in(ACTIVE))
                    .limit(batch)
                )
            )
            if ids:
                # A run's log lines go with it, in the same transaction.
                await session.execute(
                    sa.delete(ScheduledJobRunLog)
                    .where(ScheduledJobRunLog.run_id.in_(ids))
                    .execution_options(synchronize_session=False)
                )
                await session.execute(
                    sa.delete(ScheduledJobRun)
                    .where(ScheduledJobRun.id.in_(ids))
                    .execution_options(synchronize_session=False)
                )
        total += len(ids)
        if len(ids) < batch:
            return total
        await asyncio.sleep(0)  # let the poller in between batches


CLEANUP_SCHEDULE = {
    "id": CLEANUP_JOB_ID,
    "name": "Clean up run history",
    "description": (
        "Deletes run history older than SCHEDULER_HISTORY_RETENTION_DAYS, and schedules deleted "
        "more than SCHEDULER_TRASH_RETENTION_DAYS ago with their runs and audit entries."
    ),
    "scope_type": "system",
    "schedule_type": "cron",
    "schedule_value": "17 3 * * *",
    "timezone": "UTC",
    "target_type": "command",
    "target_command": CLEANUP_COMMAND,
    "target_payload": {},
    "catch_up_policy": "latest",
    "overlap_policy": "skip",
    "source_module": "scheduler",
}


async def ensure_cleanup_schedule(scheduler: SchedulerService) -> None:
    """The built-in daily cleanup: system scope, registered like any module's schedule."""
    try:
        await scheduler.register(CLEANUP_SCHEDULE)
    except IntegrityError:
        # Several pollers started at the same moment and another one inserted it first.
        log.info("cleanup schedule registered by another process")
