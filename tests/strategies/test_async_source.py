"""Async strategy, in one process: the Redis schedule source, sync, claims and redelivery.

Real PostgreSQL and real Redis (DB 5, flushed per test); the clock is passed in, so nothing
sleeps. The multi-process behaviour is in ``test_async_processes.py``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis
from taskiq import AckableMessage, ScheduledTask, TaskiqScheduler
from taskiq.exceptions import ScheduledTaskCancelledError
from taskiq.receiver import Receiver

from app.domain.execution import LEASE
from app.domain.outcomes import settle_lost_runs
from app.domain.starting import start_run
from app.persistence.models import ScheduledJobRun
from app.runtime import Runtime
from app.settings import load_settings
from app.strategies.taskiq_broker import COMMAND_STREAM, build_broker, queue_stream
from app.strategies.taskiq_source import MercatoScheduleSource
from app.strategies.taskiq_store import ScheduleStore, entry_for
from app.strategies.taskiq_sync import SENDING, reconcile_all
from app.strategies.taskiq_worker import serve_runs
from tests.support.factories import job_definition
from tests.support.redis_databases import STRATEGIES_REDIS

UTC = UTC


def every_second(**overrides):
    return job_definition(**{"name": "Echo every second", "schedule_value": "* * * * * *", **overrides})


@pytest.fixture
def settings(pg_url):
    return load_settings(
        {
            "DATABASE_URL": pg_url,
            "QUEUE_STRATEGY": "async",
            "REDIS_URL": STRATEGIES_REDIS,
            "SCHEDULER_MIN_INTERVAL_SECONDS": "1",
        }
    )


@pytest.fixture
async def redis():
    client = Redis.from_url(STRATEGIES_REDIS)
    await client.flushdb()  # this database belongs to these tests
    yield client
    await client.aclose()


@pytest.fixture
async def rt(settings, clock, redis):
    runtime = Runtime.create(settings, clock=clock)
    yield runtime
    await runtime.close()


@pytest.fixture
async def source(settings, rt):
    """A scheduler process's source, opened without its background maintenance."""
    broker = build_broker(settings)
    src = MercatoScheduleSource(settings, broker, runtime=rt)
    src.connect()
    yield src
    await src.shutdown()
    await broker.connection_pool.disconnect()


@pytest.fixture
def store(redis):
    return ScheduleStore(redis)


async def runs_of(rt, job_id=None) -> list[ScheduledJobRun]:
    async with rt.sessions() as session:
        query = sa.select(ScheduledJobRun).order_by(ScheduledJobRun.scheduled_for, ScheduledJobRun.attempt)
        if job_id:
            query = query.where(ScheduledJobRun.job_id == job_id)
        return list(await session.scalars(query))


async def sent_run_ids(redis, stream=COMMAND_STREAM) -> list[str]:
    broker = build_broker(load_settings({}))
    entries = await redis.xrange(stream)
    return [broker.formatter.loads(fields[b"data"]).kwargs["run_id"] for _, fields in entries]


async def due_task(source, job_id, slot) -> ScheduledTask:
    [task] = [t for t in await source.get_schedules() if t.kwargs["job_id"] == job_id and t.time == slot]
    return task


# ----- sync: the database change reaches Redis at once ------------------------------------------


async def test_it_writes_each_change_to_redis_the_moment_it_commits(rt, store, clock):
    job = await rt.scheduler.create(every_second())
    scores, specs = await store.snapshot()
    assert scores == {job.id: job.next_run_at.timestamp()}
    assert '"value":"* * * * * *"' in specs[job.id]

    changed = await rt.scheduler.update(job.id, {"schedule_value": "0 */5 * * * *"})
    scores, specs = await store.snapshot()
    assert scores[job.id] == changed.next_run_at.timestamp() == datetime(2026, 6, 1, 12, 5, tzinfo=UTC).timestamp()
    assert '"value":"0 */5 * * * *"' in specs[job.id]

    await rt.scheduler.disable(job.id, note="maintenance")
    assert await store.snapshot() == ({}, {})
    await rt.scheduler.enable(job.id)
    assert job.id in (await store.snapshot())[0]
    await rt.scheduler.delete(job.id)
    assert await store.snapshot() == ({}, {})


async def test_reconcile_adds_missing_repairs_changed_and_removes_orphans(rt, store, redis):
    kept, lost, stale, late = [
        await rt.scheduler.create(every_second(name=f"job {i}", schedule_value=f"{i} * * * * *")) for i in range(4)
    ]
    await store.remove([lost.id])
    await redis.hset(store.defs_key, stale.id, '{"type":"cron","value":"* * * * *"}')
    await redis.zadd(store.due_key, {late.id: late.next_run_at.timestamp() + 3600})
    await store.put([replace(entry_for(kept), job_id="deleted-long-ago")])

    report = await reconcile_all(rt)

    assert report == "reconciled 4 schedules with Redis: 1 added, 2 repaired, 1 orphaned removed"
    expected = [entry_for(j) for j in (kept, lost, stale, late)]
    assert await store.snapshot() == (
        {e.job_id: e.next_at.timestamp() for e in expected},
        {e.job_id: e.spec for e in expected},
    )
    assert await reconcile_all(rt) == "reconciled 4 schedules with Redis: 0 added, 0 repaired, 0 orphaned removed"


@pytest.mark.slow
async def test_scheduler_start_in_async_mode_reconciles_and_exits(rt, store, redis, settings):
    job = await rt.scheduler.create(every_second())
    await redis.flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "QUEUE_STRATEGY": "async",
        "REDIS_URL": STRATEGIES_REDIS,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "scheduler", "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "reconciled 1 schedule with Redis: 1 added, 0 repaired, 0 orphaned removed"
    assert list((await store.snapshot())[0]) == [job.id]


@pytest.mark.slow
def test_worker_commands_refuse_to_start_in_the_local_strategy(sqlite_url):
    env = {**os.environ, "DATABASE_URL": sqlite_url, "QUEUE_STRATEGY": "local"}
    for command in ("start", "scheduler"):
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "worker", command], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0 and "QUEUE_STRATEGY=async" in done.stderr


# ----- the source: exact slots from our engine ---------------------------------------------------


async def test_it_lists_exact_slots_computed_by_our_engine(rt, source, clock):
    # pycron never matches 7 (Sunday) and fires a cron at whatever second it first sees it.
    clock.set(datetime(2026, 6, 7, 6, 59, 58, tzinfo=UTC))  # a Sunday, 08:59:58 in Berlin
    sunday = await rt.scheduler.create(every_second(schedule_value="0 9 * * 7", timezone="Europe/Berlin"))
    second = await rt.scheduler.create(every_second())

    tasks = await source.get_schedules()

    assert [t.time for t in tasks if t.kwargs["job_id"] == sunday.id] == [datetime(2026, 6, 7, 7, 0, tzinfo=UTC)]
    # An every-second schedule lists the next ticks' slots, so it fires every second although
    # taskiq applies a refreshed list one tick after it asked for it.
    assert [t.time.second for t in tasks if t.kwargs["job_id"] == second.id] == [59, 0, 1]
    assert len({t.schedule_id for t in tasks}) == len(tasks)


async def test_two_schedulers_racing_for_the_same_slots_fire_each_once(rt, source, settings, redis, clock):
    jobs = [await rt.scheduler.create(every_second(name=f"job {i}")) for i in range(50)]
    slot = jobs[0].next_run_at
    other_rt = Runtime.create(settings, clock=clock)
    other = MercatoScheduleSource(settings, source.broker, runtime=other_rt)
    other.connect()
    try:
        mine, theirs = await source.get_schedules(), await other.get_schedules()
        clock.set(slot + timedelta(milliseconds=5))
        due = [(s, t) for s, tasks in ((source, mine), (other, theirs)) for t in tasks if t.time == slot]
        outcomes = await asyncio.gather(*(s.pre_send(t) for s, t in due), return_exceptions=True)
    finally:
        await other.shutdown()
        await other_rt.close()

    assert len(due) == 100
    assert sum(o is None for o in outcomes) == 50
    assert all(isinstance(o, ScheduledTaskCancelledError) for o in outcomes if o is not None)
    runs = await runs_of(rt)
    assert sorted((r.job_id, r.scheduled_for) for r in runs) == sorted((j.id, slot) for j in jobs)
    # The send that won carries the run, not the slot: mercato.run(run_id).
    sent = [t for (s, t), o in zip(due, outcomes) if o is None]
    assert sorted(t.kwargs["run_id"] for t in sent) == sorted(r.id for r in runs)
    # Claimed and marked for sending; post_send (after the XADD) confirms it (SENDING + stream -> stream).
    assert all(r.status == "queued" and r.queue_job_id == SENDING + COMMAND_STREAM for r in runs)


async def test_a_disabled_or_deleted_schedule_is_not_sent_even_from_a_stale_list(rt, source, clock):
    paused = await rt.scheduler.create(every_second(name="paused"))
    gone = await rt.scheduler.create(every_second(name="gone"))
    slot = paused.next_run_at
    stale = [await due_task(source, paused.id, slot), await due_task(source, gone.id, slot)]

    await rt.scheduler.disable(paused.id)
    await rt.scheduler.delete(gone.id)
    clock.set(slot)

    for task in stale:
        with pytest.raises(ScheduledTaskCancelledError):
            await source.pre_send(task)
    assert await runs_of(rt) == []
    assert await source.get_schedules() == []


async def test_a_changed_cron_takes_effect_at_once(rt, source, clock):
    job = await rt.scheduler.create(every_second())
    old_slot = job.next_run_at
    stale = await due_task(source, job.id, old_slot)

    changed = await rt.scheduler.update(job.id, {"schedule_value": "30 * * * * *"})
    clock.set(old_slot)
    with pytest.raises(ScheduledTaskCancelledError):
        await source.pre_send(stale)

    assert await runs_of(rt) == []
    clock.set(changed.next_run_at - timedelta(seconds=1))
    assert [t.time for t in await source.get_schedules()] == [datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)]


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("latest", ["missed", "missed", "missed", "missed", "catch_up:queued"]),
        ("skip", ["missed"] * 5),
        ("all", ["catch_up:queued"] * 5),
    ],
)
async def test_an_outage_longer_than_the_grace_is_recorded_per_catch_up_policy(
    rt, source, store, redis, clock, policy, expected
):
    job = await rt.scheduler.create(every_second(schedule_type="interval", schedule_value="2m", catch_up_policy=policy))
    await redis.flushdb()  # Redis lost everything...
    clock.advance(minutes=11, seconds=30)  # ...and 5 slots passed, the newest 90 s ago
    await reconcile_all(rt)

    [task] = await source.get_schedules()  # the overdue slot, offered again under a fresh id
    assert task.time == job.next_run_at and "~" in task.schedule_id
    if "catch_up:queued" in expected:
        await source.pre_send(task)
    else:
        with pytest.raises(ScheduledTaskCancelledError):
            await source.pre_send(task)

    runs = await runs_of(rt, job.id)
    assert [r.status if r.status == "missed" else f"{r.trigger}:{r.status}" for r in runs] == expected
    assert [r.scheduled_for for r in runs] == [job.next_run_at + timedelta(minutes=2 * i) for i in range(5)]
    assert (await store.snapshot())[0][job.id] == (job.next_run_at + timedelta(minutes=10)).timestamp()


# ----- sending runs --------------------------------------------------------------------------------


async def test_a_queue_target_is_sent_to_its_queue_stream(rt, source, redis, clock):
    job = await rt.scheduler.create(
        every_second(target_type="queue", target_queue="currency-rates", target_command=None, target_payload={})
    )
    task = await due_task(source, job.id, job.next_run_at)
    clock.set(job.next_run_at)
    await TaskiqScheduler(source.broker, [source]).on_ready(source, task)  # what taskiq's loop calls

    [run] = await runs_of(rt)
    assert task.labels["queue_name"] == queue_stream("currency-rates") == run.queue_job_id
    assert await sent_run_ids(redis, queue_stream("currency-rates")) == [run.id]
    assert await sent_run_ids(redis, COMMAND_STREAM) == []


async def test_a_manual_run_is_sent_at_once(rt, redis):
    job = await rt.scheduler.create(every_second())
    run = await rt.scheduler.trigger(job.id)
    assert await sent_run_ids(redis) == [run.id]
    [row] = await runs_of(rt)
    assert (row.status, row.trigger, row.queue_job_id) == ("queued", "manual", COMMAND_STREAM)


async def test_a_retry_is_sent_when_its_backoff_has_passed_not_before(rt, redis, clock):
    from app.strategies.taskiq_sync import send_due_runs

    job = await rt.scheduler.create(every_second(max_retries=1, retry_backoff_seconds=30))
    run = await rt.scheduler.trigger(job.id)
    await redis.delete(COMMAND_STREAM)
    assert await start_run(rt.execution, run.id, worker="a-worker that dies")
    clock.advance(seconds=LEASE.total_seconds() + 1)
    await settle_lost_runs(rt.execution)  # failed: the worker is gone; a retry is queued 30 s later
    broker = build_broker(rt.settings)
    try:
        assert await send_due_runs(rt, broker) == 0
        clock.advance(seconds=30)
        assert await send_due_runs(rt, broker) == 1
        assert await send_due_runs(rt, broker) == 0  # sent once, not again on the next look
    finally:
        await broker.connection_pool.disconnect()
    first, retry = await runs_of(rt)
    assert (first.status, retry.trigger, retry.attempt) == ("failed", "retry", 2)
    assert await sent_run_ids(redis) == [retry.id]


async def test_runs_redis_lost_are_sent_again_and_waiting_ones_are_not(rt, redis, clock):
    from app.strategies.taskiq_sync import send_due_runs

    job = await rt.scheduler.create(every_second())
    broker = build_broker(rt.settings)
    try:
        assert await send_due_runs(rt, broker) == 0  # the scheduler starts: marks Redis as alive
        waiting = await rt.scheduler.trigger(job.id)  # on the stream, no worker has read it yet
        clock.advance(seconds=30)
        assert await send_due_runs(rt, broker) == 0  # not sent twice

        await redis.flushdb()  # Redis restarts empty
        clock.advance(seconds=1)
        assert await send_due_runs(rt, broker) == 1
        assert await send_due_runs(rt, broker) == 0
    finally:
        await broker.connection_pool.disconnect()
    assert await sent_run_ids(redis) == [waiting.id]


# ----- the worker side: a message delivered twice starts one run ----------------------------------


async def delivered(broker, run_id: str) -> AckableMessage:
    message = broker.find_task("mercato.run").kicker().with_task_id(run_id)._prepare_message(run_id=run_id)
    acked = []

    async def ack():
        acked.append(run_id)

    return AckableMessage(data=broker.formatter.dumps(message).message, ack=ack)


@pytest.fixture
async def worker_broker(settings, rt):
    broker = serve_runs(build_broker(settings), settings, Runtime.create)
    broker.is_worker_process = True
    await broker.startup()
    yield broker
    await broker.shutdown()


async def test_a_redelivered_message_does_not_run_the_job_twice(rt, worker_broker):
    job = await rt.scheduler.create(every_second(target_payload={"message": "once"}))
    run = await rt.scheduler.trigger(job.id)
    receiver = Receiver(worker_broker, run_startup=False)

    await receiver.callback(await delivered(worker_broker, run.id))
    [done] = await runs_of(rt)
    assert done.status == "succeeded" and done.started_at and done.finished_at and done.duration_ms is not None
    assert done.result["echo"] == {"message": "once"}

    await receiver.callback(await delivered(worker_broker, run.id))  # redelivered
    [again] = await runs_of(rt)
    assert (again.status, again.started_at, again.finished_at) == ("succeeded", done.started_at, done.finished_at)


async def test_a_run_whose_worker_died_is_failed_and_retried_not_started_again(rt, worker_broker, clock):
    job = await rt.scheduler.create(every_second(max_retries=1))
    run = await rt.scheduler.trigger(job.id)
    clock.set(datetime.now(UTC))
    assert await start_run(rt.execution, run.id, worker="killed-worker:1")  # then SIGKILL mid-task

    receiver = Receiver(worker_broker, run_startup=False)
    await receiver.callback(await delivered(worker_broker, run.id))  # redelivered to a live worker
    [still] = await runs_of(rt)
    assert (still.status, still.queue_job_id) == ("running", "killed-worker:1")

    clock.advance(seconds=LEASE.total_seconds() + 1)  # the lease runs out
    assert await settle_lost_runs(rt.execution) == [run.id]
    lost, retry = await runs_of(rt)
    assert lost.status == "failed" and "stopped" in lost.error_message
    assert (retry.trigger, retry.status, retry.attempt) == ("retry", "queued", 2)


async def test_an_overlap_skip_is_recorded_and_announced_as_in_the_local_strategy(rt, source, clock):
    job = await rt.scheduler.create(every_second(overlap_policy="skip"))
    busy = await rt.scheduler.trigger(job.id)  # still queued: the next slot overlaps it
    heard = []

    async def listen(event):
        heard.append(event)

    rt.events.subscribe("scheduler.job.skipped", listen)
    slot = job.next_run_at
    task = await due_task(source, job.id, slot)
    clock.set(slot)
    with pytest.raises(ScheduledTaskCancelledError):
        await source.pre_send(task)

    [skipped] = [r for r in await runs_of(rt) if r.id != busy.id]
    assert (skipped.status, skipped.scheduled_for) == ("skipped", slot)
    assert "still queued or running" in skipped.reason
    assert [(e.run_id, e.status, e.reason) for e in heard] == [(skipped.id, "skipped", skipped.reason)]
