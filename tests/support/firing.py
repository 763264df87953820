"""Firing schedules in a test: one poller round, every queued run, and reading what happened."""

from __future__ import annotations

import sqlalchemy as sa

from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.strategies.local import LocalScheduler


async def fire(poller: LocalScheduler) -> int:
    """One poller round, then wait for every run it started."""
    started = await poller.tick()
    await poller.drain()
    return started


async def run_queued(runtime) -> None:
    """Start and finish every queued run, as the local poller does (a few at a time: the
    PostgreSQL server is shared with other test sessions and its connections are finite)."""
    poller = LocalScheduler(runtime, concurrency=4)
    while await poller.tick():
        await poller.drain()


async def runs_of(runtime, job_id: str) -> list[ScheduledJobRun]:
    """Every run of a schedule, oldest slot first (attempts of one slot in order)."""
    async with runtime.sessions() as session:
        rows = await session.scalars(
            sa.select(ScheduledJobRun)
            .where(ScheduledJobRun.job_id == job_id)
            .order_by(ScheduledJobRun.scheduled_for, ScheduledJobRun.attempt, ScheduledJobRun.id)
        )
        return list(rows)


async def reload(runtime, job_id: str) -> ScheduledJob:
    async with runtime.sessions() as session:
        return await session.get(ScheduledJob, job_id)
