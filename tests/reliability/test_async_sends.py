"""Async strategy: a run claimed by a scheduler that dies before its message reaches the stream.

The claim commits the run row (``queued``) and only then does taskiq put the message on the
stream. A scheduler SIGKILLed between the two left the run waiting for the 10-minute safety net:
for an every-second job, a lost slot. Now a run taken for sending is marked ``sending:<stream>``
until ``post_send`` confirms the XADD; an unconfirmed one is sent again after ``SEND_GRACE``.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis
from taskiq import TaskiqScheduler

from app.persistence.models import ScheduledJobRun
from app.runtime import Runtime
from app.settings import load_settings
from app.strategies.taskiq_broker import COMMAND_STREAM, build_broker
from app.strategies.taskiq_source import MercatoScheduleSource
from app.strategies.taskiq_sync import SEND_GRACE, SENDING, send_due_runs
from tests.support.redis_databases import FAULTS_REDIS


@pytest.fixture
async def redis():
    client = Redis.from_url(FAULTS_REDIS)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def rt(pg_url, clock, redis):
    settings = load_settings(
        {
            "DATABASE_URL": pg_url,
            "QUEUE_STRATEGY": "async",
            "REDIS_URL": FAULTS_REDIS,
            "SCHEDULER_MIN_INTERVAL_SECONDS": "1",
            "DATABASE_POOL_SIZE": "2",
        }
    )
    runtime = Runtime.create(settings, clock=clock)
    yield runtime
    await runtime.close()


@pytest.fixture
async def source(rt):
    broker = build_broker(rt.settings)
    src = MercatoScheduleSource(rt.settings, broker, runtime=rt)
    src.connect()
    await send_due_runs(rt, broker)  # a scheduler that has been running: the broker's marker is set
    yield src
    await src.shutdown()
    await broker.connection_pool.disconnect()


async def due(source, job):
    [task] = [t for t in await source.get_schedules() if t.kwargs["job_id"] == job.id and t.time == job.next_run_at]
    return task


async def only_run(rt) -> ScheduledJobRun:
    async with rt.sessions() as session:
        [run] = list(await session.scalars(sa.select(ScheduledJobRun)))
        return run


async def on_stream(redis, broker) -> list[str]:
    return [broker.formatter.loads(f[b"data"]).kwargs["run_id"] for _, f in await redis.xrange(COMMAND_STREAM)]


async def test_a_run_whose_sender_died_before_the_xadd_is_sent_again_after_the_grace(rt, source, redis, clock):
    job = await rt.scheduler.create(
        {
            "name": "every second",
            "schedule_type": "cron",
            "schedule_value": "* * * * * *",
            "target_type": "command",
            "target_command": "demo.echo",
        }
    )
    task = await due(source, job)
    clock.set(job.next_run_at)
    await source.pre_send(task)  # claimed and committed; the process dies here, before taskiq's XADD
    run = await only_run(rt)
    assert (run.status, run.queue_job_id) == ("queued", SENDING + COMMAND_STREAM)

    # Another scheduler's maintenance round: within the grace it leaves the send alone...
    clock.advance(seconds=SEND_GRACE.total_seconds() - 1)
    assert await send_due_runs(rt, source.broker) == 0
    assert await on_stream(redis, source.broker) == []
    # ...after it, the run is sent again, and confirmed.
    clock.advance(seconds=2)
    assert await send_due_runs(rt, source.broker) == 1
    assert await on_stream(redis, source.broker) == [run.id]
    assert (await only_run(rt)).queue_job_id == COMMAND_STREAM


async def test_a_confirmed_send_is_never_sent_again(rt, source, redis, clock):
    job = await rt.scheduler.create(
        {
            "name": "every second",
            "schedule_type": "cron",
            "schedule_value": "* * * * * *",
            "target_type": "command",
            "target_command": "demo.echo",
        }
    )
    task = await due(source, job)
    clock.set(job.next_run_at)
    await TaskiqScheduler(source.broker, [source]).on_ready(source, task)  # pre_send, XADD, post_send
    run = await only_run(rt)
    assert run.queue_job_id == COMMAND_STREAM
    clock.advance(seconds=SEND_GRACE.total_seconds() * 3)
    assert await send_due_runs(rt, source.broker) == 0
    assert await on_stream(redis, source.broker) == [run.id]
