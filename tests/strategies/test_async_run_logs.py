"""Run logs in the async strategy: a real ``taskiq worker`` writes a running run's lines to the
database while it runs, and the rest with its outcome (``mercato worker scheduler`` and
``mercato worker start`` as processes, as in ``test_async_processes``)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from app.domain.run_log_reads import read_run_log
from app.persistence.models import ScheduledJob
from app.runtime import Runtime
from app.settings import load_settings
from tests.strategies.test_async_processes import Cluster, Web, _empty, definition, wait_until
from tests.support.redis_databases import STRATEGIES_REDIS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(pg_database, tmp_path_factory):
    asyncio.run(_empty(pg_database))
    cluster = Cluster(pg_database, tmp_path_factory.mktemp("async-run-logs"))
    cluster.start("scheduler-1", "scheduler")
    cluster.start("worker-1", "start", "--workers", "1")
    cluster.wait_for("scheduler-1", "scheduler started")
    cluster.wait_for("worker-1", "Listening started")
    yield cluster
    cluster.stop()


@pytest.fixture
async def web(pg_database, cluster):
    settings = load_settings(
        {
            "DATABASE_URL": pg_database,
            "QUEUE_STRATEGY": "async",
            "REDIS_URL": STRATEGIES_REDIS,
            "SCHEDULER_MIN_INTERVAL_SECONDS": "1",
            "DATABASE_POOL_SIZE": "2",
        }
    )
    runtime = Runtime.create(settings)
    async with runtime.sessions() as session:
        before = set(await session.scalars(sa.select(ScheduledJob.id)))
    yield Web(runtime, before)
    await runtime.close()


async def test_a_worker_writes_a_running_runs_lines_as_it_runs_and_the_rest_with_its_outcome(web, cluster):
    job = await web.scheduler.create(
        definition("slow echo", schedule_value="0 0 1 1 *", target_payload={"message": "hi", "sleep": 3})
    )
    run = await web.scheduler.trigger(job.id)

    async def live():
        page = await read_run_log(web.scheduler, run.id)
        return page if page.lines and not page.finished else None

    seen = await wait_until(live, timeout=20)
    assert seen, cluster.log("worker-1")
    assert [line.message for line in seen.lines][:2] == ["echo 'hi' (attempt 1)", "sleeping 3 s"]

    async def complete():
        page = await read_run_log(web.scheduler, run.id)
        return page if page.complete else None

    done = await wait_until(complete, timeout=20)
    assert done and done.run.status == "succeeded"
    assert [line.message for line in done.lines] == [
        "echo 'hi' (attempt 1)",
        "sleeping 3 s",
        "slept 1 of 3 s",
        "slept 2 of 3 s",
        "slept 3 of 3 s",
    ]
    assert [line.seq for line in done.lines] == [1, 2, 3, 4, 5]
    assert {line.tenant_id for line in done.lines} == {None}  # a system schedule's run


async def test_a_failing_run_on_a_worker_keeps_what_it_logged(web, cluster):
    job = await web.scheduler.create(
        definition(
            "bad rates",
            schedule_value="0 0 1 1 *",
            target_type="queue",
            target_queue="currency-rates",
            target_command=None,
            target_payload={"symbols": ["XXX"]},
        )
    )
    run = await web.scheduler.trigger(job.id)

    async def complete():
        page = await read_run_log(web.scheduler, run.id)
        return page if page.complete else None

    done = await wait_until(complete, timeout=20)
    assert done and done.run.status == "failed"
    assert [(line.level, line.message) for line in done.lines] == [
        ("WARNING", "no rate for XXX; known: USD, GBP, PLN, JPY")
    ]
