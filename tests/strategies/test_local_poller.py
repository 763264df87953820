"""The running poller on a real clock: on time, woken by changes, never spinning, stopping gracefully."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.persistence.models import ScheduledJob
from app.runtime import Runtime
from app.settings import load_settings
from app.strategies.local import LocalScheduler
from tests.support.factories import job_definition
from tests.support.firing import runs_of

#: Long on purpose: a poller that only woke up on its poll interval would be 30 s late.
POLL_MS = "30000"


@pytest.fixture
async def live_runtime(db_url):
    runtime = Runtime.create(load_settings({"DATABASE_URL": db_url, "SCHEDULER_POLL_INTERVAL_MS": POLL_MS}))
    yield runtime
    await runtime.close()


def _two_seconds_ahead() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=0) + timedelta(seconds=3 if now.microsecond > 500_000 else 2)


async def _wait_for_status(runtime, job_id, statuses, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = await runs_of(runtime, job_id)
        if runs and runs[-1].status in statuses:
            return runs
        await asyncio.sleep(0.05)
    raise AssertionError(f"no run of {job_id} reached {statuses} within {timeout}s: {[r.status for r in runs]}")


async def _poller(runtime, **kwargs):
    poller = LocalScheduler(runtime, **kwargs)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.3)  # asleep, with nothing due
    return poller, task


async def _stop(poller, task):
    poller.stop()
    await asyncio.wait_for(task, 10)


@pytest.mark.slow
async def test_a_schedule_saved_two_seconds_ahead_fires_within_a_second_of_its_slot(live_runtime):
    poller, task = await _poller(live_runtime)
    try:
        slot = _two_seconds_ahead()
        job = await live_runtime.scheduler.create(
            job_definition(schedule_type="interval", schedule_value="1h", start_at=slot.isoformat())
        )
        assert job.next_run_at == slot
        [run] = await _wait_for_status(live_runtime, job.id, {"succeeded"})
    finally:
        await _stop(poller, task)
    assert run.scheduled_for == slot
    assert timedelta(0) <= run.started_at - slot < timedelta(seconds=1)


@pytest.mark.slow
async def test_a_change_made_by_another_process_wakes_the_poller_through_notify(pg_url):
    live_runtime = Runtime.create(load_settings({"DATABASE_URL": pg_url, "SCHEDULER_POLL_INTERVAL_MS": POLL_MS}))
    other_process = Runtime.create(load_settings({"DATABASE_URL": pg_url}))
    poller, task = await _poller(live_runtime)
    try:
        slot = _two_seconds_ahead()
        job = await other_process.scheduler.create(
            job_definition(schedule_type="interval", schedule_value="1h", start_at=slot.isoformat())
        )
        [run] = await _wait_for_status(live_runtime, job.id, {"succeeded"})
    finally:
        await _stop(poller, task)
        await other_process.close()
        await live_runtime.close()
    assert run.started_at - slot < timedelta(seconds=1)


class CountingPoller(LocalScheduler):
    """A poller that counts its rounds (a busy poller must wait, not spin)."""

    rounds = 0

    async def tick(self, **options):
        self.rounds += 1
        return await super().tick(**options)


@pytest.mark.slow
async def test_a_poller_with_every_slot_busy_runs_one_at_a_time_and_waits_instead_of_spinning(live_runtime):
    job = await live_runtime.scheduler.create(job_definition(target_payload={"sleep": 0.4}))
    for _ in range(3):
        await live_runtime.scheduler.trigger(job.id)
    poller = CountingPoller(live_runtime, concurrency=1)
    task = asyncio.create_task(poller.run())
    try:
        await _wait_for_status(live_runtime, job.id, {"succeeded"}, timeout=5)
        while any(r.status != "succeeded" for r in await runs_of(live_runtime, job.id)):
            await asyncio.sleep(0.05)
    finally:
        await _stop(poller, task)
    # One round to start each run and one after each finishes, give or take: not hundreds.
    runs = await runs_of(live_runtime, job.id)
    assert all(later.started_at >= earlier.finished_at for earlier, later in zip(runs, runs[1:]))  # one at a time
    assert poller.rounds < 15


# ----- graceful stop of ``mercato scheduler start`` --------------------------------------------


@pytest.mark.slow
async def test_sigterm_lets_the_running_job_finish_before_the_process_exits(live_runtime, db_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": db_url, "SCHEDULER_POLL_INTERVAL_MS": "200", "QUEUE_STRATEGY": "local"}
    out, err = tmp_path / "out", tmp_path / "err"
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "scheduler", "start"],
        env=env,
        stdout=out.open("w"),
        stderr=err.open("w"),
    )
    try:
        job = await live_runtime.scheduler.create(
            job_definition(
                schedule_type="interval",
                schedule_value="1h",
                start_at=_two_seconds_ahead().isoformat(),
                target_payload={"sleep": 2},
            )
        )
        await _wait_for_status(live_runtime, job.id, {"running"}, timeout=10)
        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    [run] = await runs_of(live_runtime, job.id)
    assert process.returncode == 0, err.read_text()
    assert (run.status, run.error_message) == ("succeeded", None)
    assert 1500 <= run.duration_ms < 3000
    assert time.monotonic() - stopped_at < 5
    printed = out.read_text()
    assert "scheduler started (local strategy" in printed
    assert printed.endswith(
        "stopping: finishing 1 run(s) in flight (Ctrl+C again to interrupt them)\nscheduler stopped\n"
    )


@pytest.mark.slow
async def test_a_second_sigterm_interrupts_the_runs_in_flight(sqlite_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": sqlite_url, "SCHEDULER_POLL_INTERVAL_MS": "200", "QUEUE_STRATEGY": "local"}
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "scheduler", "start"],
        env=env,
        stdout=out.open("w"),
        stderr=subprocess.DEVNULL,
    )
    runtime = Runtime.create(load_settings({"DATABASE_URL": sqlite_url}))
    try:
        job = await runtime.scheduler.create(
            job_definition(
                schedule_type="interval",
                schedule_value="1h",
                start_at=_two_seconds_ahead().isoformat(),
                target_payload={"sleep": 60},
            )
        )
        await _wait_for_status(runtime, job.id, {"running"}, timeout=10)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert process.poll() is None  # still finishing its run
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=5)
        [run] = await runs_of(runtime, job.id)
    finally:
        if process.poll() is None:
            process.kill()
        await runtime.close()
    assert process.returncode == 0
    assert run.status == "running" and run.lease_expires_at is not None  # settled when the lease runs out
    assert "stopping now; interrupted runs are settled as failed" in out.read_text()


@pytest.mark.slow
async def test_a_due_schedule_locked_by_someone_else_is_retried_calmly(pg_url):
    runtime = Runtime.create(load_settings({"DATABASE_URL": pg_url, "SCHEDULER_POLL_INTERVAL_MS": POLL_MS}))
    try:
        job = await runtime.scheduler.create(
            job_definition(schedule_type="interval", schedule_value="1h", start_at=_two_seconds_ahead().isoformat())
        )
        async with runtime.sessions.begin() as session:  # an admin's open transaction holds the row
            await session.execute(sa.select(ScheduledJob).where(ScheduledJob.id == job.id).with_for_update())
            poller = CountingPoller(runtime)
            task = asyncio.create_task(poller.run())
            await asyncio.sleep(3.5)  # the slot passes while the row is held
            held = poller.rounds
            assert await runs_of(runtime, job.id) == []
        [run] = await _wait_for_status(runtime, job.id, {"succeeded"})  # fires as soon as it is let go
        await _stop(poller, task)
    finally:
        await runtime.close()
    assert held < 60  # about one look every 50 ms while held, not thousands
    assert run.scheduled_for == job.next_run_at
