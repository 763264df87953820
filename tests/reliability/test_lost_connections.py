"""PostgreSQL connections cut under running processes, Redis flushed under the async strategy.

A PostgreSQL restart is too disruptive for a machine other suites share, so the server is told
to terminate every connection to this suite's database (``pg_terminate_backend``, filtered by
database name): to the processes that is what a restart or a failover looks like. They must
survive (no crash, no busy loop of failures), resume firing by themselves, and neither double
nor lose a slot: the few seconds of the gap are within the misfire grace and run late.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.persistence.models import ScheduledJobRun
from app.strategies.local import LocalScheduler
from bench.chaos_harness import Chaos, run_chaos, sever_connections
from tests.local_support import definition, runs_of, utc
from tests.reliability.conftest import FAULTS_REDIS

LOCAL = Chaos("local", schedules=60, seconds=12, every=2.5, actions=("sever",), schedulers=2, quiet=4)
ASYNC = Chaos("async", schedules=30, seconds=14, every=3, actions=("sever", "flush", "sever"), schedulers=2, quiet=4)


def check(account, *, max_errors_per_process: int) -> None:
    summary = account.summary()
    print("\n", summary)
    assert account.crashed == [], summary
    assert summary["fired_twice"] == 0 and summary["not_accounted"] == 0, summary
    assert account.early == [] and account.failed_otherwise == [], summary
    # A run whose outcome could not be written when the connection went is written on retry:
    # nothing is left for the lease to settle as "the process stopped".
    assert account.interrupted == 0, summary
    # Firing resumed by itself: slots two seconds after the last cut are claimed on time.
    last = max(when for _, when in account.events)
    after = [(created - slot).total_seconds() for _, slot, created, _ in account.runs if slot >= last + timedelta(seconds=2)]
    assert after and max(after) < 1.5, sorted(after)[-5:]
    # Failures were logged, and retried calmly: a handful per process, not a loop.
    per_process = Counter(name for name, line in _error_lines(account.fleet))
    assert all(n <= max_errors_per_process for n in per_process.values()), per_process


def _error_lines(fleet):
    for path in sorted(fleet.logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if '"level": "error"' in line:
                yield re.sub(r"\.\d+\.log$", "", path.name), line


@pytest.mark.slow
async def test_local_pollers_survive_their_connections_being_cut_and_resume_firing(pg_url, tmp_path):
    check(await run_chaos(LOCAL, pg_url, tmp_path), max_errors_per_process=20)


@pytest.mark.slow
async def test_async_processes_survive_cut_connections_and_a_redis_flush(pg_url, tmp_path):
    check(await run_chaos(ASYNC, pg_url, tmp_path, redis_url=FAULTS_REDIS), max_errors_per_process=20)


# ----- an outage longer than the grace, in-process (a clock moved by hand) -------------------------


async def test_a_poller_backs_off_while_the_database_is_down_then_fires_the_gap_per_catch_up_policy(
    runtime, clock, caplog
):
    """The database is unreachable while 11 minutes pass (as the poller's clock sees them): the
    poller keeps trying with a growing pause, and once it is back the missed slots follow each
    schedule's catch-up policy."""
    jobs = {policy: await runtime.scheduler.create(definition(name=policy, schedule_value="*/5 * * * *",
                                                              catch_up_policy=policy))
            for policy in ("latest", "skip", "all")}
    poller = LocalScheduler(runtime)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.sleep(0.3)

        def refuse(*_args, **_kwargs):
            raise OSError("connection refused (the database is restarting)")

        event.listen(runtime.engine.sync_engine, "do_connect", refuse)
        try:
            await sever_connections(runtime.settings.database_url)
            clock.set(utc(2026, 6, 1, 12, 11, 45))  # 12:05 and 12:10 passed, both over a minute ago
            await asyncio.sleep(4)
            delays = [float(m.group(1)) for r in caplog.records
                      if (m := re.search(r"poller round failed; retrying in ([\d.]+) s", r.getMessage()))]
            assert delays[:4] == [0.5, 1.0, 2.0, 4.0], delays
            assert not task.done()
        finally:
            event.remove(runtime.engine.sync_engine, "do_connect", refuse)
        await poller.schedules_changed([])  # the LISTEN connection's reconnect wakes it just so
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(await _all_runs(runtime)) < 5:
            await asyncio.sleep(0.1)
    finally:
        poller.stop()
        await task
    outcome = {policy: [(r.scheduled_for.strftime("%H:%M"), r.trigger if r.status != "missed" else "missed")
                        for r in await runs_of(runtime, job.id)] for policy, job in jobs.items()}
    assert outcome == {
        "latest": [("12:05", "missed"), ("12:10", "catch_up")],
        "skip": [("12:05", "missed"), ("12:10", "missed")],
        "all": [("12:05", "catch_up"), ("12:10", "catch_up")],
    }


async def _all_runs(runtime):
    async with runtime.sessions() as session:
        return list(await session.scalars(sa.select(ScheduledJobRun)))
