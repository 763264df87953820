"""Scheduler processes SIGKILLed and SIGSTOPped on a timer while schedules fire every second.

Nothing doubled: no slot has two run rows, and no slot's target ran twice (the chaos target
writes a ledger line per execution). Nothing lost: every slot has a run that ends succeeded,
or failed because the process running it was killed under it (then the lease runs out and it
is settled, once). No run starts before its slot. The 500-a-second, 60-second version of these
runs is ``python -m bench.chaos_kill``; ``docs/guarantees.md`` has its figures.
"""

from __future__ import annotations

import pytest

from bench.chaos_harness import Chaos, run_chaos
from tests.reliability.conftest import CHAOS_REDIS

pytestmark = pytest.mark.slow

#: What this 2-core machine carries inside the suite while other suites share it (the bench
#: runs 500 a second): every slot claimed within the grace and run without a backlog to drain.
LOCAL = Chaos("local", schedules=150, seconds=15, every=2.5, actions=("kill", "kill", "pause"), schedulers=3)
ASYNC = Chaos("async", schedules=40, seconds=15, every=2.5, actions=("kill", "kill", "pause"), schedulers=2)


def check(account) -> None:
    summary = account.summary()
    print("\n", summary)
    assert account.kills >= 3 and account.pauses >= 1, summary
    assert summary["fired_twice"] == 0, summary
    assert summary["not_accounted"] == 0, summary
    assert account.early == [], summary
    assert account.failed_otherwise == [], summary
    # Only a run its process was killed under may fail; it failed once and nothing re-ran it.
    assert account.statuses["failed"] == account.interrupted, summary
    assert account.errors == [], summary


async def test_local_pollers_killed_and_paused_every_few_seconds_fire_each_slot_exactly_once(pg_url, tmp_path):
    check(await run_chaos(LOCAL, pg_url, tmp_path))


async def test_async_schedulers_killed_and_paused_every_few_seconds_fire_each_slot_exactly_once(pg_url, tmp_path):
    check(await run_chaos(ASYNC, pg_url, tmp_path, redis_url=CHAOS_REDIS))
