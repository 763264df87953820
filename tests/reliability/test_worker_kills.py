"""A process killed while a run is in flight: the run is neither lost nor run twice.

In the local strategy the poller runs the targets itself; in the async strategy a taskiq worker
does. Either way the run holds a lease: nobody starts it again while it lasts (a redelivered
message starts nothing), and when it runs out the run is settled ``failed`` once, with a retry
queued per the schedule's policy. The chaos target's ledger shows what really ran.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.persistence.models import ScheduledJobRun
from tests.support.chaos import (
    Fleet,
    chaos_runtime,
    empty,
    flush_redis,
    settle_killed,
    start_async,
    start_local,
    wait_started,
)
from tests.support.chaos_targets import COMMAND, read_ledger
from tests.support.redis_databases import FAULTS_REDIS

pytestmark = pytest.mark.slow
UTC = UTC


async def _one_slow_run(runtime, slot: datetime):
    """A schedule firing once, at ``slot``: its target takes 6 s; one retry, 1 s backoff."""
    return await runtime.scheduler.create(
        {
            "name": "slow",
            "schedule_type": "cron",
            "schedule_value": f"{slot.second} {slot.minute} {slot.hour} * * *",
            "target_type": "command",
            "target_command": COMMAND,
            "target_payload": {"sleep": 6},
            "max_retries": 1,
            "retry_backoff_seconds": 1,
        }
    )


async def _wait(check, timeout: float):
    deadline = time.monotonic() + timeout
    while not (result := await check()) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return result


async def _runs(runtime, job_id):
    async with runtime.sessions() as session:
        return list(
            await session.scalars(
                sa.select(ScheduledJobRun).where(ScheduledJobRun.job_id == job_id).order_by(ScheduledJobRun.attempt)
            )
        )


async def _exercise(runtime, fleet: Fleet, victim: str, replacement, quiet: float):
    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    job = await _one_slow_run(runtime, slot)

    async def executed():
        return read_ledger(fleet.ledger)

    [first] = await _wait(executed, timeout=15)
    assert (first.job_id, first.slot, first.attempt) == (job.id, slot, 1)
    fleet.kill(victim)  # mid-run: the target sleeps 6 s
    replacement()
    await asyncio.sleep(quiet)  # the survivors see a running run (and, async, its message again)

    [run] = await _runs(runtime, job.id)
    assert run.status == "running" and run.queue_job_id in fleet.killed
    assert len(read_ledger(fleet.ledger)) == 1, "nobody started the run again while its lease lasted"

    assert await settle_killed(runtime) == 1  # the lease runs out
    failed, retry = await _runs(runtime, job.id)
    assert (failed.id, failed.status, failed.attempt) == (run.id, "failed", 1)
    assert "stopped" in failed.error_message
    assert (retry.trigger, retry.status, retry.attempt, retry.scheduled_for) == ("retry", "queued", 2, slot)
    assert await settle_killed(runtime) == 0  # settled once
    assert len(read_ledger(fleet.ledger)) == 1


async def test_a_poller_killed_mid_run_leaves_the_run_to_its_lease_then_failed_once_and_retried(pg_url, tmp_path):
    runtime = chaos_runtime(pg_url)
    fleet = Fleet(pg_url, tmp_path, strategy="local")
    try:
        await empty(runtime)
        names = start_local(fleet, 1)
        await asyncio.to_thread(wait_started, fleet, names)
        await _exercise(runtime, fleet, "poller-1", lambda: fleet.start("poller-2", "scheduler", "start"), quiet=2)
        assert fleet.errors() == []
    finally:
        fleet.stop()
        await runtime.close()


async def test_an_async_worker_killed_mid_run_leaves_its_redelivered_message_idle(pg_url, tmp_path):
    await flush_redis(FAULTS_REDIS)
    runtime = chaos_runtime(pg_url, strategy="async", redis_url=FAULTS_REDIS)
    fleet = Fleet(pg_url, tmp_path, strategy="async", redis_url=FAULTS_REDIS)
    try:
        await empty(runtime)
        names = start_async(fleet, schedulers=1, worker_processes=1)
        await asyncio.to_thread(wait_started, fleet, names)

        def replacement():
            fleet.start("worker-2", "worker", "start", "--workers", "1")
            fleet.wait_for("worker-2", "Listening started")

        # WORKER_REDELIVERY_SECONDS is 3 here: wait past it, so the message comes round again.
        await _exercise(runtime, fleet, "worker", replacement, quiet=6)
        assert "not queued any more" in fleet.log("worker-2"), "the message was redelivered and refused"
        assert fleet.errors() == []
    finally:
        fleet.stop()
        await runtime.close()
        await flush_redis(FAULTS_REDIS)
