"""The clock: a slot never starts before its instant, and a clock stepped back (NTP, a VM
restored from a snapshot) or forward fires nothing twice.

Real processes on the real clock are checked in ``test_chaos.py`` (every run there started at
or after its slot, SIGSTOP pauses included); here the clock is moved by hand.
"""

from __future__ import annotations

import pytest

from app.strategies.local import LocalScheduler
from tests.support.clock import utc
from tests.support.factories import job_definition
from tests.support.firing import fire, runs_of


@pytest.mark.parametrize("kind, value", [("cron", "* * * * *"), ("interval", "1m")])
async def test_a_clock_stepped_back_and_forward_fires_each_slot_once_and_never_early(runtime, clock, kind, value):
    clock.set(utc(2026, 6, 1, 12, 0, 0))
    job = await runtime.scheduler.create(job_definition(schedule_type=kind, schedule_value=value, jitter_seconds=0))
    poller = LocalScheduler(runtime)
    assert job.next_run_at == utc(2026, 6, 1, 12, 1)

    for now in [
        utc(2026, 6, 1, 12, 0, 59, 999_000),  # a millisecond early: nothing
        utc(2026, 6, 1, 12, 1, 0, 1_000),  # due
        utc(2026, 6, 1, 11, 58, 0),  # stepped back three minutes
        utc(2026, 6, 1, 12, 1, 30),  # back where it was: 12:01 is done already
        utc(2026, 6, 1, 12, 2, 0, 500_000),  # 12:02
        utc(2026, 6, 1, 12, 1, 59),  # stepped back a second
        utc(2026, 6, 1, 12, 3, 30),  # and forward past 12:03
    ]:
        clock.set(now)
        await fire(poller)
    runs = await runs_of(runtime, job.id)
    assert [(r.scheduled_for, r.status) for r in runs] == [
        (utc(2026, 6, 1, 12, 1), "succeeded"),
        (utc(2026, 6, 1, 12, 2), "succeeded"),
        (utc(2026, 6, 1, 12, 3), "succeeded"),
    ]
    assert all(r.started_at >= r.scheduled_for for r in runs)


async def test_a_jittered_run_starts_at_or_after_its_slot_never_before(runtime, clock):
    clock.set(utc(2026, 6, 1, 12, 0, 0))
    job = await runtime.scheduler.create(job_definition(schedule_value="* * * * *", jitter_seconds=30))
    poller = LocalScheduler(runtime)
    clock.set(utc(2026, 6, 1, 12, 1, 0))
    await fire(poller)
    [run] = await runs_of(runtime, job.id)
    for second in range(0, 32):
        clock.set(utc(2026, 6, 1, 12, 1, second))
        await fire(poller)
        [run] = [r for r in await runs_of(runtime, job.id) if r.scheduled_for == utc(2026, 6, 1, 12, 1)]
        if run.started_at is not None:
            break
    assert run.status == "succeeded" and run.not_before <= run.started_at and run.started_at >= run.scheduled_for
