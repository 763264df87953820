"""The database down for longer than the misfire grace: the poller backs off and, once the
database is back, the gap follows each schedule's catch-up policy.

Real processes with their connections cut (a gap of seconds, within the grace) are in
``test_chaos.py``; an outage of minutes needs a clock moved by hand, so it runs in-process.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.persistence.models import ScheduledJobRun
from app.strategies.local import LocalScheduler
from tests.support.chaos import sever_connections
from tests.support.clock import utc
from tests.support.factories import job_definition
from tests.support.firing import runs_of


@pytest.mark.slow
async def test_a_poller_backs_off_while_the_database_is_down_then_fires_the_gap_per_catch_up_policy(
    runtime, clock, caplog
):
    """The database is unreachable while 11 minutes pass (as the poller's clock sees them): the
    poller keeps trying with a growing pause, and once it is back the missed slots follow each
    schedule's catch-up policy."""
    jobs = {
        policy: await runtime.scheduler.create(
            job_definition(name=policy, schedule_value="*/5 * * * *", catch_up_policy=policy)
        )
        for policy in ("latest", "skip", "all")
    }
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
            delays = [
                float(m.group(1))
                for r in caplog.records
                if (m := re.search(r"poller round failed; retrying in ([\d.]+) s", r.getMessage()))
            ]
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
    outcome = {
        policy: [
            (r.scheduled_for.strftime("%H:%M"), r.trigger if r.status != "missed" else "missed")
            for r in await runs_of(runtime, job.id)
        ]
        for policy, job in jobs.items()
    }
    assert outcome == {
        "latest": [("12:05", "missed"), ("12:10", "catch_up")],
        "skip": [("12:05", "missed"), ("12:10", "missed")],
        "all": [("12:05", "catch_up"), ("12:10", "catch_up")],
    }


async def _all_runs(runtime):
    async with runtime.sessions() as session:
        return list(await session.scalars(sa.select(ScheduledJobRun)))
