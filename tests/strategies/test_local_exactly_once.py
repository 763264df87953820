"""Several ``mercato scheduler start`` processes on one database: every slot fires exactly once.

Real processes, a real clock, schedules every second. The database decides who fires a slot;
killing a process (SIGKILL, no goodbye) must neither double nor lose a slot.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.domain.execution import LEASE
from app.domain.outcomes import settle_lost_runs
from app.persistence.models import ScheduledJobRun
from app.runtime import Runtime
from app.settings import load_settings
from tests.support.factories import job_definition

pytestmark = pytest.mark.slow


def _start_pollers(db_url: str, count: int, logs: Path) -> list[subprocess.Popen]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "QUEUE_STRATEGY": "local",
        "SCHEDULER_POLL_INTERVAL_MS": "200",
        "SCHEDULER_MIN_INTERVAL_SECONDS": "1",
    }
    # Output goes to files: a pipe nobody reads fills up and blocks the process writing its logs.
    return [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "scheduler", "start"],
            env=env,
            stdout=open(logs / f"poller{i}.out", "w"),
            stderr=open(logs / f"poller{i}.err", "w"),
        )
        for i in range(count)
    ]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _every_second(runtime, count: int) -> dict[str, datetime]:
    """``count`` no-op schedules every second; returns each one's first slot."""
    gate = asyncio.Semaphore(8)

    async def one(i):
        async with gate:
            return await runtime.scheduler.create(
                job_definition(
                    name=f"every second {i}", schedule_type="interval", schedule_value="1s", target_payload={}
                )
            )

    return {job.id: job.next_run_at for job in await asyncio.gather(*(one(i) for i in range(count)))}


async def _claimed_up_to(runtime, slot: datetime, schedules: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with runtime.sessions() as session:
            claimed = await session.scalar(
                sa.select(sa.func.count()).select_from(ScheduledJobRun).where(ScheduledJobRun.scheduled_for == slot)
            )
        if claimed >= schedules:
            return
        await asyncio.sleep(0.2)


async def _runs(runtime, job_ids) -> list[ScheduledJobRun]:
    async with runtime.sessions() as session:
        return list(await session.scalars(sa.select(ScheduledJobRun).where(ScheduledJobRun.job_id.in_(list(job_ids)))))


def _account(runs, firsts: dict[str, datetime], until: datetime) -> dict:
    """Duplicates and lost slots among the slots from each schedule's first up to ``until``."""
    per_slot = Counter((r.job_id, r.scheduled_for) for r in runs if r.trigger != "manual")
    duplicates = [key for key, n in per_slot.items() if n > 1]
    lost = []
    for job_id, first in firsts.items():
        slot = first
        while slot <= until:
            if (job_id, slot) not in per_slot:
                lost.append((job_id, slot))
            slot += timedelta(seconds=1)
    lag = sorted((r.created_at - r.scheduled_for).total_seconds() for r in runs if r.scheduled_for <= until)
    return {
        "duplicates": duplicates,
        "lost": lost,
        "statuses": Counter(r.status for r in runs),
        "claim_lag_p99": lag[int(len(lag) * 0.99)] if lag else None,
        "workers": Counter(r.queue_job_id for r in runs if r.queue_job_id),
    }


async def _exercise(
    db_url: str, logs: Path, *, processes: int, schedules: int, seconds: float, kill_after: float | None = None
):
    settings = replace(load_settings({"DATABASE_URL": db_url}), scheduler_min_interval_seconds=1)
    runtime = Runtime.create(settings)
    firsts = await _every_second(runtime, schedules)
    pollers = _start_pollers(db_url, processes, logs)
    try:
        started = time.monotonic()
        if kill_after is not None:
            await asyncio.sleep(kill_after)
            pollers[0].send_signal(signal.SIGKILL)
        await asyncio.sleep(seconds - (time.monotonic() - started))
        # Every slot up to here must be claimed by someone. On a busy machine claiming may lag a
        # little: wait for it (how late it was is the timing tests' business), then stop.
        until = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        await _claimed_up_to(runtime, until, len(firsts), timeout=20)
        _stop(pollers)
        report = _account(await _runs(runtime, firsts), firsts, until)
        report["covered_seconds"] = (until - max(firsts.values())).total_seconds()
        report["errors"] = [
            line
            for f in sorted(logs.glob("*.err"))
            for line in f.read_text().splitlines()
            if '"level": "error"' in line or "Traceback" in line
        ]
        # Runs left "running" by a killed process are settled once their lease runs out.
        later = Runtime.create(settings, clock=lambda: datetime.now(UTC) + LEASE + timedelta(seconds=1))
        try:
            report["settled"] = len(await settle_lost_runs(later.execution))
        finally:
            await later.close()
        report["after_settling"] = Counter(r.status for r in await _runs(runtime, firsts))
        return report
    finally:
        _stop(pollers)
        await runtime.close()


async def test_three_pollers_fire_200_schedules_every_second_exactly_once(pg_url, tmp_path):
    report = await _exercise(pg_url, tmp_path, processes=3, schedules=200, seconds=12)
    assert report["covered_seconds"] >= 8, report
    assert report["duplicates"] == [] and report["lost"] == [], report
    assert report["errors"] == []
    assert report["statuses"]["missed"] == 0 and report["settled"] == 0, report["statuses"]
    assert report["statuses"]["failed"] == 0 and report["statuses"]["running"] == 0, report["statuses"]
    assert len(report["workers"]) == 3, report["workers"]  # all three really took part


async def test_a_poller_killed_midway_neither_doubles_nor_loses_a_slot(pg_url, tmp_path):
    report = await _exercise(pg_url, tmp_path, processes=3, schedules=200, seconds=10, kill_after=4)
    assert report["covered_seconds"] >= 6, report
    assert report["duplicates"] == [] and report["lost"] == [], report
    assert report["errors"] == []
    # What the killed process had started is settled as failed, once; nothing stays "running".
    assert report["after_settling"]["running"] == 0
    assert report["after_settling"]["failed"] == report["settled"]


async def test_two_pollers_on_sqlite_fire_every_second_exactly_once(sqlite_url, tmp_path):
    report = await _exercise(sqlite_url, tmp_path, processes=2, schedules=50, seconds=8)
    assert report["covered_seconds"] >= 5, report
    assert report["duplicates"] == [] and report["lost"] == [], report
    assert report["errors"] == []
    assert report["statuses"]["missed"] == 0 and report["settled"] == 0, report["statuses"]
    # Not asserted: that both took part. SQLite has one writer at a time; the poller that claims
    # a slot usually starts its run too, and one process may well win every claim.
