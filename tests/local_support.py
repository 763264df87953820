"""Helpers shared by the local strategy's tests: a schedule definition, reading runs, one round."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.strategies.local import LocalScheduler

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def definition(**overrides: Any) -> dict[str, Any]:
    """A system schedule running ``demo.echo`` every five minutes; override what the test is about."""
    data: dict[str, Any] = {
        "name": "Echo",
        "scope_type": "system",
        "schedule_type": "cron",
        "schedule_value": "*/5 * * * *",
        "target_type": "command",
        "target_command": "demo.echo",
        "target_payload": {"message": "hi"},
    }
    data.update(overrides)
    return data


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


async def fire(poller: LocalScheduler) -> int:
    """One poller round, then wait for every run it started."""
    started = await poller.tick()
    await poller.drain()
    return started
