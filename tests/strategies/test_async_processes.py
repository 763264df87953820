"""Async strategy with real processes: ``mercato worker scheduler`` x2 and ``mercato worker start`` x3.

PostgreSQL is the test database; Redis DB 5 holds the schedule source and the streams (flushed
here, used by nothing else). Schedules are made in this process through the service, as the web
app would, so the sync hooks are what tells the running schedulers.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from app.domain.execution import LEASE
from app.domain.outcomes import settle_lost_runs
from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.runtime import Runtime
from app.settings import load_settings
from tests.support.redis_databases import STRATEGIES_REDIS

pytestmark = pytest.mark.slow

UTC = UTC
RECONCILE_SECONDS = 3
REDELIVERY_SECONDS = 3
ROOT = Path(__file__).resolve().parents[2]


class Cluster:
    """Scheduler and worker processes, each logging to its own file."""

    def __init__(self, database_url: str, logs: Path) -> None:
        self.logs = logs
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "QUEUE_STRATEGY": "async",
            "REDIS_URL": STRATEGIES_REDIS,
            "SCHEDULER_MIN_INTERVAL_SECONDS": "1",
            "SCHEDULER_RECONCILE_INTERVAL_SECONDS": str(RECONCILE_SECONDS),
            "WORKER_REDELIVERY_SECONDS": str(REDELIVERY_SECONDS),
            "DATABASE_POOL_SIZE": "2",  # five processes share a PostgreSQL with other test suites
        }
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def wait_for(self, name: str, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            assert self.procs[name].poll() is None, f"{name} exited:\n{self.log(name)}"
            assert time.monotonic() < deadline, f"{name} did not log {text!r}:\n{self.log(name)}"
            time.sleep(0.1)

    def worker_pids(self, name: str) -> list[int]:
        """The child processes where a worker's runs execute."""
        return [
            int(p) for p in re.findall(r"(?:Started process worker-\d+ with|restarted with) pid (\d+)", self.log(name))
        ]

    def kill(self, name: str) -> list[int]:
        """SIGKILL a worker: its children first (where the runs are), then its parent."""
        killed = []
        for pid in self.worker_pids(name):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:  # an earlier child the worker already replaced
                pass
        self.procs[name].kill()
        self.procs[name].wait()
        return killed

    def stop(self) -> None:
        children = [pid for name in self.procs for pid in self.worker_pids(name)]
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                proc.kill()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def cluster(pg_database, tmp_path_factory):
    asyncio.run(_empty(pg_database))
    cluster = Cluster(pg_database, tmp_path_factory.mktemp("async-cluster"))
    for name in ("scheduler-1", "scheduler-2"):
        cluster.start(name, "scheduler")
    for name in ("worker-1", "worker-2", "worker-3"):
        cluster.start(name, "start", "--workers", "1")
    try:
        # A machine busy with other suites may take a while to start five processes.
        for name in ("scheduler-1", "scheduler-2"):
            cluster.wait_for(name, "scheduler started", timeout=60)
        for name in ("worker-1", "worker-2", "worker-3"):
            cluster.wait_for(name, "Listening started", timeout=60)
    except BaseException:
        cluster.stop()  # no process outlives a cluster that did not start
        raise
    yield cluster
    cluster.stop()


async def _flush_redis() -> None:
    redis = Redis.from_url(STRATEGIES_REDIS)
    await redis.flushdb()  # this database belongs to these tests
    await redis.aclose()


async def _empty(database_url: str) -> None:
    """Before the processes start: TRUNCATE beside running schedulers could deadlock with them."""
    runtime = Runtime.create(load_settings({"DATABASE_URL": database_url}))
    async with runtime.engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE scheduler_audit_log, scheduled_job_runs, scheduled_jobs"))
    await runtime.close()
    await _flush_redis()


@dataclass
class Web:
    """This process plays the web app: it changes schedules through the service."""

    runtime: Runtime
    #: Schedules that existed before the test: each test sees only its own.
    before: set[str]

    @property
    def scheduler(self):
        return self.runtime.scheduler

    async def job_ids(self) -> list[str]:
        async with self.runtime.sessions() as session:
            return [i for i in await session.scalars(sa.select(ScheduledJob.id)) if i not in self.before]


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
    # Retire this test's schedules so that the next test does not pay for them.
    async with runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id.not_in(before)).values(is_enabled=False, next_run_at=None)
        )
    await runtime.close()


def definition(name: str, **overrides) -> dict:
    data = {
        "name": name,
        "scope_type": "system",
        "schedule_type": "cron",
        "schedule_value": "* * * * * *",
        "target_type": "command",
        "target_command": "demo.echo",
        "target_payload": {"message": name},
    }
    data.update(overrides)
    return data


async def runs(web: Web, **where) -> list[ScheduledJobRun]:
    """Runs of this test's schedules."""
    mine = await web.job_ids()
    async with web.runtime.sessions() as session:
        query = (
            sa.select(ScheduledJobRun)
            .where(ScheduledJobRun.job_id.in_(mine))
            .order_by(ScheduledJobRun.scheduled_for, ScheduledJobRun.attempt)
        )
        for field, value in where.items():
            query = query.where(getattr(ScheduledJobRun, field) == value)
        return list(await session.scalars(query))


async def wait_until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def sleep_until(instant: datetime) -> None:
    await asyncio.sleep(max(0.0, (instant - datetime.now(UTC)).total_seconds()))


def worker_ids(cluster: Cluster) -> dict[str, str]:
    """Worker id as recorded on a run (host:pid of the child process) -> worker process name."""
    host = socket.gethostname()
    return {
        f"{host}:{pid}": name
        for name in cluster.procs
        if name.startswith("worker")
        for pid in cluster.worker_pids(name)
    }


def lag_ms(run: ScheduledJobRun) -> float:
    """Slot to start: firing plus waiting for a free worker."""
    return (run.started_at - run.scheduled_for).total_seconds() * 1000


def fire_lag_ms(run: ScheduledJobRun) -> float:
    """Slot to the message on the stream (``enqueued_at`` is stamped when the run is sent)."""
    return (run.enqueued_at - run.scheduled_for).total_seconds() * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ----- end to end ------------------------------------------------------------------------------


async def test_a_schedule_made_two_seconds_ahead_fires_on_time_and_succeeds_on_a_worker(web, cluster):
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    job = await web.scheduler.create(
        definition("at one second of each minute", schedule_value=f"{first.second} * * * * *")
    )
    queue_job = await web.scheduler.create(
        definition(
            "rates",
            target_type="queue",
            target_queue="currency-rates",
            target_command=None,
            target_payload={"symbols": ["USD"]},
        )
    )
    assert job.next_run_at == first

    [run] = await wait_until(lambda: _finished(web, job.id), timeout=first.timestamp() - time.time() + 5)
    assert (run.trigger, run.status, run.scheduled_for) == ("scheduled", "succeeded", first)
    assert 0 <= lag_ms(run) < 1000
    assert run.finished_at >= run.started_at and run.duration_ms is not None
    assert run.queue_job_id in worker_ids(cluster)
    assert run.result["echo"] == {"message": "at one second of each minute"}

    queued = await wait_until(lambda: _finished(web, queue_job.id))
    assert queued and queued[0].status == "succeeded" and queued[0].result["rates"] == {"USD": "1.08"}


async def _finished(web, job_id):
    return [r for r in await runs(web, job_id=job_id) if r.finished_at]


async def test_a_manual_trigger_runs_on_a_worker(web, cluster):
    job = await web.scheduler.create(definition("manual only", schedule_value="0 0 1 1 *"))
    run = await web.scheduler.trigger(job.id)

    [done] = await wait_until(lambda: _finished(web, job.id))
    assert (done.id, done.trigger, done.status) == (run.id, "manual", "succeeded")
    assert done.queue_job_id in worker_ids(cluster)


async def test_disabling_deleting_and_changing_a_schedule_take_effect_at_once(web, cluster):
    paused, deleted, changed = [await web.scheduler.create(definition(n)) for n in ("paused", "deleted", "changed")]
    assert await wait_until(lambda: _all_fired(web, [paused.id, deleted.id, changed.id], 2))

    await web.scheduler.disable(paused.id)
    await web.scheduler.delete(deleted.id)
    target = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    await web.scheduler.update(changed.id, {"schedule_value": f"{target.second} * * * * *"})
    changed_at = datetime.now(UTC)
    await sleep_until(target + timedelta(seconds=1.5))

    for job in (paused, deleted):
        assert [r.scheduled_for for r in await runs(web, job_id=job.id) if r.scheduled_for > changed_at] == []

    async def changed_runs():
        found = [r for r in await runs(web, job_id=changed.id) if r.scheduled_for > changed_at]
        # The new slot fires once, at its time (the assert below); how soon its worker
        # finishes is the machine's business: waited for, not asserted.
        return found if found and all(r.status == "succeeded" for r in found) else None

    after = await wait_until(changed_runs) or await runs(web, job_id=changed.id)
    assert [(r.scheduled_for, r.status) for r in after if r.scheduled_for > changed_at] == [(target, "succeeded")]


async def _all_fired(web, job_ids, count):
    found = await runs(web, status="succeeded")
    return all(sum(r.job_id == j for r in found) >= count for j in job_ids)


# ----- Redis loses everything ----------------------------------------------------------------------


async def test_after_a_redis_flush_firing_resumes_within_the_reconcile_interval(web, cluster):
    jobs = [await web.scheduler.create(definition(f"flush {i}")) for i in range(20)]
    assert await wait_until(lambda: _all_fired(web, [j.id for j in jobs], 2))

    await _flush_redis()  # schedules, streams and consumer groups gone
    flushed_at = datetime.now(UTC)
    await asyncio.sleep(RECONCILE_SECONDS + 4)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    healed = flushed_at + timedelta(seconds=RECONCILE_SECONDS + 1)

    scheduled = [r for r in await runs(web, trigger="scheduled") if r.scheduled_for <= end]
    for job in jobs:
        mine = [r for r in scheduled if r.job_id == job.id]
        # Every slot has exactly one run: the gap (shorter than the misfire grace) ran late.
        assert [r.scheduled_for for r in mine] == _seconds(job.next_run_at, end)
        after = [r for r in mine if r.scheduled_for > healed]
        assert after and all(fire_lag_ms(r) < 1000 for r in after), "fires on time again"
    assert [r for r in scheduled if flushed_at < r.scheduled_for < healed and fire_lag_ms(r) > 1000], (
        "the slots of the gap are recorded as late runs"
    )

    async def all_ran():
        return all(r.status == "succeeded" for r in await runs(web, trigger="scheduled") if r.scheduled_for <= end)

    # Runs whose messages the flush took with it were sent again, and ran.
    assert await wait_until(all_ran, timeout=10)


def _seconds(first: datetime, last: datetime) -> list[datetime]:
    return [first + timedelta(seconds=i) for i in range(int((last - first).total_seconds()) + 1)]


# ----- exactly once under load ---------------------------------------------------------------------


async def _every_second(web, count: int, name: str) -> dict[str, datetime]:
    """``count`` schedules every second (each run takes 0.5 s); returns each one's first slot."""
    firsts: dict[str, datetime] = {}
    for start in range(0, count, 4):
        jobs = await asyncio.gather(
            *(
                web.scheduler.create(definition(f"{name} {i}", target_payload={"sleep": 0.5}, max_retries=1))
                for i in range(start, min(count, start + 4))
            )
        )
        firsts.update((j.id, j.next_run_at) for j in jobs)
    return firsts


def _account(all_runs, firsts: dict[str, datetime], until: datetime) -> dict:
    """Duplicate and lost slots from each schedule's first slot up to ``until``."""
    per_slot = Counter((r.job_id, r.scheduled_for) for r in all_runs if r.trigger in ("scheduled", "catch_up"))
    lost = [(j, s) for j, first in firsts.items() for s in _seconds(first, until) if (j, s) not in per_slot]
    window = [r for r in all_runs if r.started_at and r.trigger == "scheduled"]
    # A schedule saved under a second before its first slot is listed one tick late: lag from
    # the second slot on.
    later = [r for r in all_runs if r.trigger == "scheduled" and r.scheduled_for > firsts[r.job_id]]
    lags = [lag_ms(r) for r in later if r.started_at] or [0.0]
    fired = [fire_lag_ms(r) for r in later if r.enqueued_at] or [0.0]
    return {
        "duplicates": [key for key, n in per_slot.items() if n > 1],
        "lost": lost,
        "statuses": Counter(r.status for r in all_runs),
        "workers": Counter(r.queue_job_id for r in window),
        "covered_seconds": (until - max(firsts.values())).total_seconds(),
        "fire_lag_ms": {"p50": round(percentile(fired, 0.5)), "p99": round(percentile(fired, 0.99))},
        "start_lag_ms": {"p50": round(percentile(lags, 0.5)), "p99": round(percentile(lags, 0.99))},
    }


def _summary(report: dict) -> dict:
    return {k: (len(v) if k in ("duplicates", "lost") else v) for k, v in report.items()}


async def sleep_past_second(fraction: float) -> None:
    now = datetime.now(UTC)
    await asyncio.sleep(1 - now.microsecond / 1e6 + fraction)


async def test_200_schedules_every_second_fire_exactly_once_even_when_a_worker_is_killed(web, cluster):
    """Two schedulers, three workers; after 8 seconds one worker is SIGKILLed mid-run."""
    firsts = await _every_second(web, 200, "load")
    await sleep_until(max(firsts.values()) + timedelta(seconds=8))
    until = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    await asyncio.sleep(2)  # a loaded machine may claim a little late: late is not lost

    healthy = _account(await runs(web), firsts, until)
    print("\nall workers:", _summary(healthy))
    assert healthy["covered_seconds"] >= 5, _summary(healthy)
    assert healthy["duplicates"] == [] and healthy["lost"] == [], _summary(healthy)
    assert set(healthy["statuses"]) <= {"succeeded", "running", "queued"}, healthy["statuses"]
    took_part = {worker_ids(cluster)[w] for w in healthy["workers"]}
    assert took_part == {"worker-1", "worker-2", "worker-3"}, healthy["workers"]

    await sleep_past_second(0.25)  # the runs of this second are in flight
    victim = {f"{socket.gethostname()}:{pid}" for pid in cluster.kill("worker-3")}
    await asyncio.sleep(7)
    until = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    await asyncio.sleep(REDELIVERY_SECONDS + 1)  # what the dead worker had taken goes elsewhere

    all_runs = await runs(web)
    report = _account(all_runs, firsts, until)
    print("one worker killed:", _summary(report))
    assert report["duplicates"] == [] and report["lost"] == [], _summary(report)
    in_flight = [r for r in all_runs if r.status == "running" and r.queue_job_id in victim]
    assert in_flight, "the killed worker had runs in flight"

    # The dead worker's leases run out (the scheduler does this 60 s later; here the clock moves).
    later = Runtime.create(web.runtime.settings, clock=lambda: datetime.now(UTC) + LEASE + timedelta(seconds=5))
    try:
        await settle_lost_runs(later.execution)
    finally:
        await later.close()
    after = {r.id: r for r in await runs(web)}
    for lost in in_flight:
        assert after[lost.id].status == "failed" and "stopped" in after[lost.id].error_message
        retries = [
            r
            for r in after.values()
            if r.trigger == "retry" and (r.job_id, r.scheduled_for) == (lost.job_id, lost.scheduled_for)
        ]
        assert [(r.attempt, r.status) for r in retries] == [(2, "queued")]
    assert _account(list(after.values()), firsts, until)["duplicates"] == []


# ----- cancel and input ----------------------------------------------------------------------------


async def test_a_run_on_a_worker_is_cancelled_within_two_seconds_and_input_reaches_the_worker(web, cluster):
    job = await web.scheduler.create(definition("cancel me", schedule_value="0 0 1 1 *", max_retries=2))
    run = await web.scheduler.trigger(job.id, payload={"sleep": 30, "message": "given"})

    async def running():
        [found] = await runs(web, job_id=job.id)
        return found if found.status == "running" else None

    started = await wait_until(running)
    assert started and started.queue_job_id in worker_ids(cluster)
    asked = time.monotonic()
    outcome = await web.scheduler.cancel_run(run.id)
    assert not outcome.stopped

    async def ended():
        [found] = await runs(web, job_id=job.id)
        return found if found.finished_at else None

    done = await wait_until(ended, timeout=5)
    took = time.monotonic() - asked
    print(f"\nrun on a worker cancelled {took * 1000:.0f} ms after the request")
    assert done and (done.status, done.reason) == ("cancelled", "cancelled by system")
    assert took < 2.0
    assert [r.id for r in await runs(web, job_id=job.id)] == [run.id], "not retried"

    echoed = await web.scheduler.trigger(job.id, payload={"message": "input on a worker"})

    async def both_finished():
        found = await _finished(web, job.id)
        return found if len(found) == 2 else None

    [_, finished] = await wait_until(both_finished)
    assert (finished.id, finished.status) == (echoed.id, "succeeded")
    assert finished.result["echo"] == {"message": "input on a worker"}
