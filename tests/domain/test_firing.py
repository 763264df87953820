"""Firing: due slots become runs exactly once, on time, per the schedule's policies.

Time is a FakeClock moved by hand; ``LocalScheduler.tick()`` is one poller round.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.domain.firing import MISFIRE_GRACE, claim_due_slots
from app.persistence.models import ScheduledJob
from app.runtime import Runtime
from app.settings import load_settings
from app.strategies.local import LocalScheduler
from tests.support.clock import utc
from tests.support.factories import job_definition
from tests.support.firing import fire, reload, runs_of


@pytest.fixture
def poller(runtime):
    return LocalScheduler(runtime)


async def test_a_due_slot_fires_once_and_its_run_follows_the_job(runtime, clock, poller):
    job = await runtime.scheduler.create(job_definition(target_payload={"message": "hi", "sleep": 0.2}))
    assert job.next_run_at == utc(2026, 6, 1, 12, 5)

    clock.set(utc(2026, 6, 1, 12, 4, 59))
    assert await fire(poller) == 0
    assert await runs_of(runtime, job.id) == []

    clock.set(utc(2026, 6, 1, 12, 5, 0, 300_000))
    async with runtime.sessions.begin() as session:
        claimed = await claim_due_slots(
            session, clock(), limit=10, grace=MISFIRE_GRACE, on_sqlite=runtime.settings.is_sqlite
        )
    [queued] = await runs_of(runtime, job.id)
    assert claimed.queued == [queued.id]
    assert (queued.status, queued.trigger, queued.attempt) == ("queued", "scheduled", 1)
    assert queued.scheduled_for == utc(2026, 6, 1, 12, 5) and queued.enqueued_at == clock()
    assert queued.started_at is None

    assert await poller.tick() == 1
    await asyncio.sleep(0.05)  # the target sleeps 0.2 s: catch it in flight
    [running] = await runs_of(runtime, job.id)
    assert running.status == "running" and running.started_at == clock()
    assert (await reload(runtime, job.id)).last_status == "running"

    clock.advance(seconds=1)
    await poller.drain()
    [done] = await runs_of(runtime, job.id)
    assert done.status == "succeeded"
    assert done.started_at == utc(2026, 6, 1, 12, 5, 0, 300_000)
    assert done.finished_at == clock()
    assert 200 <= done.duration_ms < 2000
    assert done.result["echo"] == {"message": "hi", "sleep": 0.2}
    assert done.result["slot"] == "2026-06-01T12:05:00+00:00"
    assert done.error_message is None and done.reason is None

    job = await reload(runtime, job.id)
    assert (job.last_run_at, job.last_status) == (done.started_at, "succeeded")
    assert job.next_run_at == utc(2026, 6, 1, 12, 10)

    assert await fire(poller) == 0  # the same slot never fires twice
    assert len(await runs_of(runtime, job.id)) == 1


async def test_next_run_advances_from_the_slot_not_from_when_the_poller_looked(runtime, clock, poller):
    job = await runtime.scheduler.create(job_definition(schedule_type="interval", schedule_value="10m"))
    assert job.next_run_at == utc(2026, 6, 1, 12, 10)

    clock.set(utc(2026, 6, 1, 12, 10, 40))  # a late poll, still within the misfire grace
    await fire(poller)
    [run] = await runs_of(runtime, job.id)
    assert (run.scheduled_for, run.trigger, run.status) == (utc(2026, 6, 1, 12, 10), "scheduled", "succeeded")
    assert (await reload(runtime, job.id)).next_run_at == utc(2026, 6, 1, 12, 20)


async def test_the_schedule_shows_the_last_failure_skip_and_manual_run(runtime, clock, poller):
    job = await runtime.scheduler.create(job_definition(target_payload={"fail": "no stock feed"}))
    clock.set(utc(2026, 6, 1, 12, 5))
    await fire(poller)
    job = await reload(runtime, job.id)
    assert (job.last_run_at, job.last_status, job.next_run_at) == (
        utc(2026, 6, 1, 12, 5),
        "failed",
        utc(2026, 6, 1, 12, 10),
    )

    await runtime.scheduler.update(job.id, {"target_payload": {}, "overlap_policy": "skip"})
    clock.set(utc(2026, 6, 1, 12, 7))
    run = await runtime.scheduler.trigger(job.id)
    await fire(poller)
    job = await reload(runtime, job.id)
    assert (job.last_run_at, job.last_status, job.next_run_at) == (
        utc(2026, 6, 1, 12, 7),
        "succeeded",
        utc(2026, 6, 1, 12, 10),
    )
    manual = [r for r in await runs_of(runtime, job.id) if r.id == run.id][0]
    assert (manual.trigger, manual.triggered_by, manual.status) == ("manual", "system", "succeeded")

    # A manual run still in flight makes the 12:10 slot skip (overlap: skip).
    await runtime.scheduler.trigger(job.id)
    clock.set(utc(2026, 6, 1, 12, 10))
    async with runtime.sessions.begin() as session:
        await claim_due_slots(session, clock(), limit=10, grace=MISFIRE_GRACE, on_sqlite=runtime.settings.is_sqlite)
    job = await reload(runtime, job.id)
    assert (job.last_status, job.next_run_at) == ("skipped", utc(2026, 6, 1, 12, 15))


# ----- catch-up after downtime -----------------------------------------------------------------


async def _after_downtime(runtime, clock, poller, **policy):
    """A five-minute schedule made at 12:00; the poller is down until 12:32 (slots 12:05..12:30 missed)."""
    job = await runtime.scheduler.create(job_definition(**policy))
    clock.set(utc(2026, 6, 1, 12, 32))
    await fire(poller)
    return await reload(runtime, job.id), await runs_of(runtime, job.id)


def _slots(runs, **match):
    return [r.scheduled_for.strftime("%H:%M") for r in runs if all(getattr(r, k) == v for k, v in match.items())]


async def test_catch_up_latest_runs_the_newest_missed_slot_once(runtime, clock, poller):
    job, runs = await _after_downtime(runtime, clock, poller)
    assert _slots(runs, trigger="catch_up") == ["12:30"]
    assert _slots(runs, trigger="catch_up", status="succeeded") == ["12:30"]
    assert _slots(runs, status="missed") == ["12:05", "12:10", "12:15", "12:20", "12:25"]
    assert all("missed while the scheduler was not running" in r.reason for r in runs if r.status == "missed")
    assert len(runs) == 6
    assert job.next_run_at == utc(2026, 6, 1, 12, 35)
    assert job.last_status == "succeeded"


async def test_catch_up_latest_needs_no_catch_up_when_a_slot_is_on_time(runtime, clock, poller):
    await runtime.scheduler.create(job_definition())
    clock.set(utc(2026, 6, 1, 12, 30, 20))
    await fire(poller)
    runs = await runs_of(runtime, (await runtime.scheduler.list()).items[0].id)
    assert _slots(runs, trigger="scheduled", status="succeeded") == ["12:30"]
    assert _slots(runs, status="missed") == ["12:05", "12:10", "12:15", "12:20", "12:25"]
    assert _slots(runs, trigger="catch_up") == []


async def test_catch_up_skip_records_every_missed_slot_and_runs_none(runtime, clock, poller):
    job, runs = await _after_downtime(runtime, clock, poller, catch_up_policy="skip")
    assert _slots(runs, status="missed") == ["12:05", "12:10", "12:15", "12:20", "12:25", "12:30"]
    assert len(runs) == 6
    assert (job.last_status, job.next_run_at) == ("missed", utc(2026, 6, 1, 12, 35))


async def test_catch_up_all_runs_every_missed_slot_within_the_window(runtime, clock, poller):
    job, runs = await _after_downtime(runtime, clock, poller, catch_up_policy="all", catch_up_window_seconds=15 * 60)
    assert _slots(runs, trigger="catch_up", status="succeeded") == ["12:20", "12:25", "12:30"]
    assert _slots(runs, status="missed") == ["12:05", "12:10", "12:15"]
    assert job.next_run_at == utc(2026, 6, 1, 12, 35)


async def test_a_long_outage_of_a_frequent_schedule_is_summarised_and_catches_up_the_newest_slot(
    runtime, clock, poller
):
    job = await runtime.scheduler.create(job_definition(schedule_type="interval", schedule_value="70s"))
    # Two days down: 2,468 slots of 70 s; the newest, 11:59:20 on 3 June, is 65 s old.
    clock.set(utc(2026, 6, 3, 12, 0, 25))
    await fire(poller)
    runs = await runs_of(runtime, job.id)
    fired = [(r.trigger, r.scheduled_for, r.status) for r in runs if r.status != "missed"]
    assert fired == [("catch_up", utc(2026, 6, 3, 11, 59, 20), "succeeded")]
    missed = [r for r in runs if r.status == "missed"]
    assert len(missed) == 101  # one row each for the oldest 100, then one summary
    assert missed[0].scheduled_for == utc(2026, 6, 1, 12, 1, 10)
    assert re.match(r"\d{4}\+ more slots missed while the scheduler was not running", missed[-1].reason)
    assert (await reload(runtime, job.id)).next_run_at == utc(2026, 6, 3, 12, 0, 30)


async def test_catch_up_all_after_a_long_outage_runs_the_newest_slots_in_the_window(runtime, clock, poller):
    job = await runtime.scheduler.create(
        job_definition(
            schedule_type="interval", schedule_value="10s", catch_up_policy="all", catch_up_window_seconds=300
        )
    )
    clock.set(utc(2026, 6, 2, 12, 0, 5))  # a day down: 8,640 slots of 10 s
    await fire(poller)
    runs = await runs_of(runtime, job.id)
    ran = [r for r in runs if r.status == "succeeded"]
    # The last minute is on time; the four minutes before it are caught up.
    assert [r.scheduled_for for r in ran] == [
        utc(2026, 6, 2, 11, 55, 10) + timedelta(seconds=10 * i) for i in range(30)
    ]
    assert {r.trigger for r in ran if r.scheduled_for < utc(2026, 6, 2, 11, 59, 5)} == {"catch_up"}
    assert {r.trigger for r in ran if r.scheduled_for >= utc(2026, 6, 2, 11, 59, 5)} == {"scheduled"}
    assert len([r for r in runs if r.status == "missed"]) == 101


# ----- DST (Debian cron's rule, Europe/Berlin 2026: 29 March spring forward, 25 October fall back)


@pytest.mark.parametrize(
    "first_day, expected_utc",
    [
        pytest.param(
            utc(2026, 3, 27),
            # 02:30 CET, then on the 29th 02:30 does not exist: 03:00 CEST; then 02:30 CEST.
            [utc(2026, 3, 27, 1, 30), utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
            id="spring-forward",
        ),
        pytest.param(
            utc(2026, 10, 23),
            # 02:30 CEST; on the 25th 02:30 happens twice: only the first (CEST) fires; then CET.
            [utc(2026, 10, 23, 0, 30), utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
            id="fall-back",
        ),
    ],
)
async def test_a_berlin_0230_daily_fires_once_a_day_at_the_right_instant_across_dst(
    runtime, clock, poller, first_day, expected_utc
):
    clock.set(first_day)
    job = await runtime.scheduler.create(job_definition(schedule_value="30 2 * * *", timezone="Europe/Berlin"))
    # A poller that looks every half hour, for four days.
    while clock() < first_day + timedelta(days=4):
        clock.advance(minutes=30)
        await fire(poller)
    runs = await runs_of(runtime, job.id)
    assert [r.scheduled_for for r in runs] == expected_utc
    assert all((r.trigger, r.status) == ("scheduled", "succeeded") for r in runs)
    assert all(r.started_at == r.scheduled_for for r in runs)  # on time to the tick


# ----- overlap, jitter, max runs, start/end -----------------------------------------------------


@pytest.mark.parametrize("policy, second", [("skip", "skipped"), ("allow", "succeeded")])
async def test_overlap_policy_decides_about_a_slot_whose_previous_run_is_in_flight(
    runtime, clock, poller, policy, second
):
    job = await runtime.scheduler.create(
        job_definition(schedule_value="* * * * *", overlap_policy=policy, target_payload={"sleep": 0.3})
    )
    clock.set(utc(2026, 6, 1, 12, 1))
    assert await poller.tick() == 1  # 12:01 starts and sleeps
    clock.set(utc(2026, 6, 1, 12, 2))
    await poller.tick()
    await poller.drain()
    first, then = await runs_of(runtime, job.id)
    assert first.status == "succeeded"
    assert (then.scheduled_for, then.status) == (utc(2026, 6, 1, 12, 2), second)
    if second == "skipped":
        assert then.reason == "previous run is still queued or running (overlap: skip)"
        assert then.finished_at == clock() and then.started_at is None


async def test_jitter_delays_each_run_by_a_random_amount_within_its_bound(runtime, clock, poller):
    ids = [(await runtime.scheduler.create(job_definition(name=f"j{i}", jitter_seconds=30))).id for i in range(20)]
    clock.set(utc(2026, 6, 1, 12, 5))
    started = await fire(poller)  # claimed, but nothing may start before its jitter
    runs = [r for job_id in ids for r in await runs_of(runtime, job_id)]
    delays = [(r.not_before - r.scheduled_for).total_seconds() for r in runs]
    assert len(runs) == 20 and started == delays.count(0) < 20
    assert all(r.status == "queued" for r in runs if r.not_before > clock())
    assert all(0 <= d <= 30 for d in delays)
    assert len(set(delays)) > 3  # really random, not a constant offset

    clock.set(utc(2026, 6, 1, 12, 5, 30))
    await fire(poller)
    runs = [r for job_id in ids for r in await runs_of(runtime, job_id)]
    assert all(r.status == "succeeded" and r.started_at >= r.not_before for r in runs)


async def test_max_runs_stops_the_schedule_after_that_many_runs(runtime, clock, poller):
    job = await runtime.scheduler.create(job_definition(max_runs=2))
    for minute in (5, 10, 15, 20):
        clock.set(utc(2026, 6, 1, 12, minute))
        await fire(poller)
    runs = await runs_of(runtime, job.id)
    assert _slots(runs) == ["12:05", "12:10"]
    job = await reload(runtime, job.id)
    assert (job.run_count, job.next_run_at, job.last_status) == (2, None, "succeeded")


async def test_start_and_end_bound_the_slots_that_fire(runtime, clock, poller):
    job = await runtime.scheduler.create(
        job_definition(start_at="2026-06-01T12:20:00+00:00", end_at="2026-06-01T12:30:00+00:00")
    )
    assert job.next_run_at == utc(2026, 6, 1, 12, 20)
    for minute in range(5, 45, 5):
        clock.set(utc(2026, 6, 1, 12, minute))
        await fire(poller)
    assert _slots(await runs_of(runtime, job.id), status="succeeded") == ["12:20", "12:25", "12:30"]
    assert (await reload(runtime, job.id)).next_run_at is None


async def test_a_disabled_schedule_does_not_fire(runtime, clock, poller):
    job = await runtime.scheduler.create(job_definition())
    await runtime.scheduler.disable(job.id, note="supplier holiday")
    clock.set(utc(2026, 6, 1, 12, 5))
    await fire(poller)
    assert await runs_of(runtime, job.id) == []


async def test_a_stored_schedule_the_engine_cannot_read_stops_without_blocking_the_others(runtime, clock, poller):
    bad = await runtime.scheduler.create(job_definition(name="bad"))
    good = await runtime.scheduler.create(job_definition(name="good"))
    async with runtime.sessions.begin() as session:  # e.g. written by an older version, or by hand
        await session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id == bad.id).values(schedule_value="every full moon")
        )
    clock.set(utc(2026, 6, 1, 12, 5))
    await fire(poller)
    assert _slots(await runs_of(runtime, good.id), status="succeeded") == ["12:05"]
    [run] = await runs_of(runtime, bad.id)
    assert (run.status, run.scheduled_for) == ("failed", utc(2026, 6, 1, 12, 5))
    assert run.error_message.startswith("the schedule cannot be evaluated")
    bad = await reload(runtime, bad.id)
    assert (bad.next_run_at, bad.last_status) == (None, "failed")


# ----- claiming in batches ---------------------------------------------------------------------


async def _claim(runtime, clock, limit):
    async with runtime.sessions.begin() as session:
        return await claim_due_slots(
            session, clock(), limit=limit, grace=MISFIRE_GRACE, on_sqlite=runtime.settings.is_sqlite
        )


async def test_claiming_in_batches_takes_each_due_slot_once(runtime, clock):
    ids = {(await runtime.scheduler.create(job_definition(name=f"j{i}"))).id for i in range(25)}
    clock.set(utc(2026, 6, 1, 12, 5))
    claims = [await _claim(runtime, clock, 10)]
    while claims[-1].full:
        claims.append(await _claim(runtime, clock, 10))
    assert [(c.jobs, len(c.queued), c.full) for c in claims] == [(10, 10, True), (10, 10, True), (5, 5, False)]
    queued = [run_id for c in claims for run_id in c.queued]
    runs = [r for job_id in ids for r in await runs_of(runtime, job_id)]
    assert sorted(r.id for r in runs) == sorted(queued)
    assert {(r.job_id, r.scheduled_for, r.status, r.trigger) for r in runs} == {
        (job_id, utc(2026, 6, 1, 12, 5), "queued", "scheduled") for job_id in ids
    }
    for job_id in ids:
        job = await reload(runtime, job_id)
        assert (job.next_run_at, job.run_count) == (utc(2026, 6, 1, 12, 10), 1)
    assert (await _claim(runtime, clock, 10)).jobs == 0  # nothing is due twice
    assert len([r for job_id in ids for r in await runs_of(runtime, job_id)]) == 25


async def test_a_schedule_moved_by_someone_else_after_the_claim_read_it_is_left_alone(sqlite_url, clock):
    """SQLite: the claim reads without a lock (one writer at a time, and a reader does not block
    it); another poller or an edit may move a schedule before the claim's one ``UPDATE`` takes the
    write lock. That schedule is neither advanced again nor given a run; the rest of the batch is.
    (PostgreSQL locks the rows it reads: nobody can move them in between.)"""
    runtime = Runtime.create(load_settings({"DATABASE_URL": sqlite_url}), clock=clock)
    try:
        jobs = [await runtime.scheduler.create(job_definition(name=f"j{i}")) for i in range(4)]
        claimed_elsewhere, edited = jobs[0].id, jobs[1].id
        moved = []

        def meanwhile(conn, cursor, statement, parameters, context, executemany):
            if not moved and statement.startswith("UPDATE scheduled_jobs AS j SET next_run_at"):
                other = sqlite3.connect(sqlite_url.split("///", 1)[1])
                with other:  # another process: claims one schedule's slot, reschedules another
                    other.execute(
                        "UPDATE scheduled_jobs SET next_run_at = '2026-06-01 12:10:00.000000', "
                        "run_count = 1 WHERE id = ?",
                        (claimed_elsewhere,),
                    )
                    other.execute(
                        "UPDATE scheduled_jobs SET next_run_at = '2026-06-01 12:07:00.000000' WHERE id = ?", (edited,)
                    )
                other.close()
                moved.append(True)

        event.listen(runtime.engine.sync_engine, "before_cursor_execute", meanwhile)
        clock.set(utc(2026, 6, 1, 12, 5))
        try:
            claimed = await _claim(runtime, clock, 10)
        finally:
            event.remove(runtime.engine.sync_engine, "before_cursor_execute", meanwhile)
        assert moved and claimed.jobs == 2 and len(claimed.queued) == 2
        for job in jobs[2:]:
            [run] = await runs_of(runtime, job.id)
            assert claimed.queued.count(run.id) == 1
            assert (await reload(runtime, job.id)).next_run_at == utc(2026, 6, 1, 12, 10)
        assert await runs_of(runtime, claimed_elsewhere) == [] and await runs_of(runtime, edited) == []
        assert (
            (await reload(runtime, claimed_elsewhere)).next_run_at,
            (await reload(runtime, claimed_elsewhere)).run_count,
        ) == (utc(2026, 6, 1, 12, 10), 1)
        assert (await reload(runtime, edited)).next_run_at == utc(2026, 6, 1, 12, 7)
        # The edited schedule fires at its new slot, once.
        clock.set(utc(2026, 6, 1, 12, 7))
        assert (await _claim(runtime, clock, 10)).jobs == 1
        assert [r.scheduled_for for r in await runs_of(runtime, edited)] == [utc(2026, 6, 1, 12, 7)]
    finally:
        await runtime.close()


# ----- exactly once, in one process ------------------------------------------------------------


async def test_two_pollers_on_one_database_fire_each_slot_once(runtime, clock, db_url):
    other = Runtime.create(replace(runtime.settings, scheduler_claim_batch_size=7), clock=clock)
    try:
        ids = [
            (await runtime.scheduler.create(job_definition(name=f"j{i}", schedule_value="* * * * *"))).id
            for i in range(20)
        ]
        mine, theirs = LocalScheduler(runtime), LocalScheduler(other)
        for minute in (1, 2, 3):
            clock.set(utc(2026, 6, 1, 12, minute))
            await asyncio.gather(mine.tick(), theirs.tick(), mine.tick())
            await asyncio.gather(mine.drain(), theirs.drain())
        for job_id in ids:
            runs = await runs_of(runtime, job_id)
            assert _slots(runs, status="succeeded") == ["12:01", "12:02", "12:03"]
    finally:
        await other.close()
