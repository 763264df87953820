"""Chaos runs: real scheduler processes SIGKILLed on a timer while hundreds of schedules fire
every second; then every slot is accounted for.

Shared by ``tests/reliability`` (short, bounded runs) and ``bench/chaos_kill.py`` (60 s, 500/s).

- **local**: several ``mercato scheduler start`` processes on one PostgreSQL database.
- **async**: ``mercato worker scheduler`` processes and a ``mercato worker start`` (taskiq
  workers); PostgreSQL plus one Redis database of the caller's choosing (flushed).

Every few seconds one scheduler process gets SIGKILL and a new one is started in its place. The
target (``tests.support.chaos_targets``) writes a ledger line per execution, so a slot that *ran* twice
shows even if the run rows look right. A slot is accounted for when it has exactly one run row
that ends ``succeeded``, ``missed``, ``skipped``, or ``failed`` because the process running it
was killed (its lease ran out; then the ledger shows whether its target had started).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from app.domain.execution import LEASE
from app.domain.outcomes import settle_lost_runs
from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.runtime import Runtime
from app.settings import load_settings
from tests.support.chaos_targets import (
    COMMAND,
    LEDGER_ENV,
    SITECUSTOMIZE,
    chaos_registry,
    executions_per_slot,
    read_ledger,
)
from tests.support.clock import UTC
from tests.support.databases import ADMIN_DSN

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "chaos-"
#: Statuses a slot may end in; ``failed`` only when its process was killed under it.
SETTLED = {"succeeded", "missed", "skipped", "failed"}


# ----- processes -------------------------------------------------------------------------------


class Fleet:
    """Scheduler and worker processes, each in a session of its own (a kill takes its children
    too), each incarnation logging to a file of its own."""

    def __init__(
        self,
        database_url: str,
        logs: Path,
        *,
        strategy: str,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.logs = logs
        site = logs / "site"
        site.mkdir(parents=True, exist_ok=True)
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self.ledger = logs / "ledger"
        self.ledger.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "QUEUE_STRATEGY": strategy,
            "SCHEDULER_POLL_INTERVAL_MS": "1000",
            "SCHEDULER_MIN_INTERVAL_SECONDS": "1",
            # Several processes share one PostgreSQL (max_connections 100) with other suites.
            "DATABASE_POOL_SIZE": "2",
            "SCHEDULER_RECONCILE_INTERVAL_SECONDS": "3",
            "WORKER_REDELIVERY_SECONDS": "3",
            "LOG_FORMAT": "json",
            LEDGER_ENV: str(self.ledger),
            # sitecustomize gives every process (taskiq's worker children too) the chaos target.
            "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
            **({"REDIS_URL": redis_url} if redis_url else {}),
            **(env or {}),
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.args: dict[str, tuple[str, ...]] = {}
        self.incarnation: Counter = Counter()
        #: host:pid of every process killed (a run's ``queue_job_id`` names its executor).
        self.killed: set[str] = set()
        self.kills = self.pauses = 0

    def start(self, name: str, *args: str) -> subprocess.Popen:
        self.incarnation[name] += 1
        self.args[name] = args
        log = open(self.logs / f"{name}.{self.incarnation[name]}.log", "w")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.procs[name]

    def restart(self, name: str) -> subprocess.Popen:
        return self.start(name, *self.args[name])

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.{self.incarnation[name]}.log").read_text(errors="replace")

    def all_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def wait_for(self, name: str, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not log {text!r} within {timeout} s:\n{self.log(name)[-3000:]}")
            time.sleep(0.1)

    def signal(self, name: str, sig: int) -> None:
        os.killpg(self.procs[name].pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children: no goodbye, no cleanup."""
        process = self.procs[name]
        host = socket.gethostname()
        self.killed.update(f"{host}:{pid}" for pid in [process.pid, *_children(process.pid)])
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        self.kills += 1

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop(self, timeout: float = 15) -> None:
        for process in self.procs.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for process in self.procs.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # stragglers, and children left behind
            except ProcessLookupError:
                pass
            process.wait()

    def errors(self) -> list[str]:
        """Log lines at level error, and tracebacks, from every incarnation."""
        return [line for line in self.all_logs().splitlines() if '"level": "error"' in line or "Traceback" in line]


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_local(fleet: Fleet, count: int) -> list[str]:
    names = [f"poller-{i}" for i in range(1, count + 1)]
    for name in names:
        fleet.start(name, "scheduler", "start")
    return names


def start_async(fleet: Fleet, schedulers: int, worker_processes: int = 2) -> list[str]:
    names = [f"scheduler-{i}" for i in range(1, schedulers + 1)]
    for name in names:
        fleet.start(name, "worker", "scheduler")
    fleet.start("worker", "worker", "start", "--workers", str(worker_processes))
    return names


def wait_started(fleet: Fleet, names: list[str], timeout: float = 30) -> None:
    for name in names:
        fleet.wait_for(name, "scheduler started", timeout)
    if "worker" in fleet.procs:
        fleet.wait_for("worker", "Listening started", timeout)


# ----- schedules -------------------------------------------------------------------------------


def chaos_runtime(database_url: str, *, strategy: str = "local", redis_url: str | None = None) -> Runtime:
    """The runtime of the process that plays the web app: makes schedules, reads the results."""
    env = {"DATABASE_URL": database_url, "QUEUE_STRATEGY": strategy, "DATABASE_POOL_SIZE": "2"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    settings = replace(load_settings(env), scheduler_min_interval_seconds=1)
    return Runtime.create(settings, registry=chaos_registry())


async def empty(runtime: Runtime) -> None:
    """Before any process starts: TRUNCATE beside running schedulers could deadlock with them."""
    async with runtime.engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE scheduler_audit_log, scheduled_job_runs, scheduled_jobs"))


async def every_second(runtime: Runtime, count: int, first_slot: datetime, **overrides: Any) -> list[str]:
    """``count`` schedules ``* * * * * *`` (6 fields) whose first slot is ``first_slot``.

    The first is made by the service (validation, audit); the others are copies made in one
    statement: 500 schedules cost a few milliseconds instead of seconds of the run.
    """
    definition = {
        "id": f"{PREFIX}0000",
        "name": "chaos 0",
        "scope_type": "system",
        "schedule_type": "cron",
        "schedule_value": "* * * * * *",
        "target_type": "command",
        "target_command": COMMAND,
        "target_payload": {},
        **overrides,
    }
    await runtime.scheduler.create(definition)
    columns = [c.name for c in ScheduledJob.__table__.columns if c.name not in ("id", "name")]
    listed = ", ".join(columns)
    async with runtime.engine.begin() as conn:
        await conn.execute(
            sa.text(
                f"INSERT INTO scheduled_jobs (id, name, {listed}) "
                f"SELECT '{PREFIX}' || lpad(g::text, 4, '0'), 'chaos ' || g, {listed} "
                f"FROM scheduled_jobs, generate_series(1, :extra) AS g WHERE id = '{PREFIX}0000'"
            ),
            {"extra": count - 1},
        )
        await conn.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id.startswith(PREFIX)).values(next_run_at=first_slot)
        )
    return [f"{PREFIX}{i:04d}" for i in range(count)]


async def stop_firing(runtime: Runtime) -> None:
    """No further slots (the schedules stay enabled, so what is queued still runs)."""
    # Rows locked in id order, as the workers recording runs lock them: no deadlock with them.
    mine = (
        sa.select(ScheduledJob.id).where(ScheduledJob.id.startswith(PREFIX)).order_by(ScheduledJob.id).with_for_update()
    )
    async with runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.id.in_(mine.scalar_subquery()))
            .values(next_run_at=None)
            .execution_options(synchronize_session=False)
        )


async def slot_counts(runtime: Runtime, until: datetime) -> Counter:
    async with runtime.sessions() as session:
        rows = await session.execute(
            sa.select(ScheduledJobRun.status, sa.func.count())
            .where(
                ScheduledJobRun.job_id.startswith(PREFIX),
                ScheduledJobRun.scheduled_for <= until,
                ScheduledJobRun.trigger.in_(("scheduled", "catch_up")),
            )
            .group_by(ScheduledJobRun.status)
        )
        return Counter(dict(rows.all()))


async def wait_claimed(runtime: Runtime, until: datetime, expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum((await slot_counts(runtime, until)).values()) >= expected:
            return True
        await asyncio.sleep(0.25)
    return False


async def wait_finished(runtime: Runtime, until: datetime, dead: set[str], timeout: float) -> bool:
    """Until nothing up to ``until`` is queued, or running in a live process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with runtime.sessions() as session:
            pending = await session.scalar(
                sa.select(sa.func.count())
                .select_from(ScheduledJobRun)
                .where(
                    ScheduledJobRun.job_id.startswith(PREFIX),
                    ScheduledJobRun.scheduled_for <= until,
                    sa.or_(
                        ScheduledJobRun.status == "queued",
                        sa.and_(
                            ScheduledJobRun.status == "running", ScheduledJobRun.queue_job_id.not_in(list(dead) or [""])
                        ),
                    ),
                )
            )
        if not pending:
            return True
        await asyncio.sleep(0.25)
    return False


async def settle_killed(runtime: Runtime) -> int:
    """What killed processes left running, settled as the next scheduler would once the lease
    runs out (a clock moved past the lease, instead of waiting a minute)."""
    later = Runtime.create(
        runtime.settings, clock=lambda: datetime.now(UTC) + LEASE + timedelta(seconds=1), registry=runtime.registry
    )
    try:
        settled = 0
        while batch := await settle_lost_runs(later.execution):  # a batch at a time, as the scheduler does
            settled += len(batch)
        return settled
    finally:
        await later.close()


# ----- the account -----------------------------------------------------------------------------


@dataclass
class Account:
    schedules: int
    seconds: int
    slots: int
    #: Slots with more than one run row.
    duplicates: list = field(default_factory=list)
    #: Slots whose target ran more than once (the ledger).
    doubled: list = field(default_factory=list)
    #: Slots with no run row at all: neither fired nor recorded missed.
    lost: list = field(default_factory=list)
    #: Run rows still queued or running at the end (claimed, then forgotten).
    unfinished: list = field(default_factory=list)
    #: Runs recorded succeeded whose target never ran.
    phantom: list = field(default_factory=list)
    #: Runs that failed for another reason than their process being killed.
    failed_otherwise: list = field(default_factory=list)
    #: Runs started before their slot.
    early: list = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    interrupted: int = 0
    interrupted_ran: int = 0
    start_lag_ms: dict = field(default_factory=dict)
    claim_lag_ms: dict = field(default_factory=dict)
    kills: int = 0
    pauses: int = 0
    errors: list = field(default_factory=list)
    #: (action, when) of every chaos action.
    events: list = field(default_factory=list)
    #: Processes that were not running at the end (other than those the run killed itself).
    crashed: list = field(default_factory=list)
    #: Per run row: (job, slot, created_at, started_at), for timing checks around events.
    runs: list = field(default_factory=list, repr=False)
    fleet: Any = field(default=None, repr=False)
    #: From the end of the chaos until every slot up to it had finished.
    drain_seconds: float = 0.0

    @property
    def not_accounted(self) -> int:
        """Slots neither fired nor recorded as missed."""
        return len(self.lost) + len(self.unfinished) + len(self.phantom)

    def ok(self) -> bool:
        return not (
            self.duplicates
            or self.doubled
            or self.lost
            or self.unfinished
            or self.phantom
            or self.early
            or self.failed_otherwise
        )

    def summary(self) -> dict:
        return {
            "schedules": self.schedules,
            "seconds": self.seconds,
            "slots": self.slots,
            "kills": self.kills,
            "pauses": self.pauses,
            "fired_twice": len(self.duplicates) + len(self.doubled),
            "not_accounted": self.not_accounted,
            "duplicates": len(self.duplicates),
            "doubled": len(self.doubled),
            "lost": len(self.lost),
            "unfinished": len(self.unfinished),
            "phantom": len(self.phantom),
            "early": len(self.early),
            "failed_otherwise": len(self.failed_otherwise),
            "statuses": dict(self.statuses),
            "interrupted": self.interrupted,
            "interrupted_ran": self.interrupted_ran,
            "start_lag_ms": self.start_lag_ms,
            "claim_lag_ms": self.claim_lag_ms,
            "examples": {
                k: getattr(self, k)[:3]
                for k in ("duplicates", "doubled", "lost", "unfinished", "phantom", "early", "failed_otherwise")
                if getattr(self, k)
            },
            "errors": self.errors[:5],
            "crashed": self.crashed,
        }


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))])
    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1])}


async def account(runtime: Runtime, job_ids: list[str], first: datetime, until: datetime, ledger: Path) -> Account:
    async with runtime.sessions() as session:
        runs = list(
            await session.scalars(
                sa.select(ScheduledJobRun).where(
                    ScheduledJobRun.job_id.startswith(PREFIX), ScheduledJobRun.scheduled_for <= until
                )
            )
        )
    seconds = int((until - first).total_seconds()) + 1
    slots = [first + timedelta(seconds=i) for i in range(seconds)]
    result = Account(schedules=len(job_ids), seconds=seconds, slots=len(job_ids) * seconds)
    scheduled = [r for r in runs if r.trigger in ("scheduled", "catch_up")]
    per_slot = Counter((r.job_id, r.scheduled_for) for r in scheduled)
    ran = executions_per_slot(read_ledger(ledger))
    result.duplicates = [k for k, n in per_slot.items() if n > 1]
    result.doubled = [k for k, n in ran.items() if n > 1 and k[1] <= until]
    result.lost = [(j, s) for j in job_ids for s in slots if (j, s) not in per_slot]
    result.unfinished = [(r.job_id, r.scheduled_for, r.status) for r in runs if r.status not in SETTLED]
    result.phantom = [
        (r.job_id, r.scheduled_for)
        for r in scheduled
        if r.status == "succeeded" and (r.job_id, r.scheduled_for) not in ran
    ]
    interrupted = [
        r for r in runs if r.status == "failed" and "process running this job stopped" in (r.error_message or "")
    ]
    result.interrupted = len(interrupted)
    result.interrupted_ran = sum(1 for r in interrupted if (r.job_id, r.scheduled_for) in ran)
    result.failed_otherwise = [
        (r.job_id, r.scheduled_for, r.error_message) for r in runs if r.status == "failed" and r not in interrupted
    ]
    result.early = [
        (r.job_id, r.scheduled_for, r.started_at)
        for r in runs
        if r.started_at is not None and r.started_at < r.scheduled_for
    ]
    result.statuses = Counter(r.status for r in scheduled)
    result.runs = [(r.job_id, r.scheduled_for, r.created_at, r.started_at) for r in scheduled]
    result.start_lag_ms = percentiles(
        [(r.started_at - r.scheduled_for).total_seconds() * 1000 for r in scheduled if r.started_at]
    )
    result.claim_lag_ms = percentiles([(r.created_at - r.scheduled_for).total_seconds() * 1000 for r in scheduled])
    return result


# ----- one run ---------------------------------------------------------------------------------


@dataclass
class Chaos:
    strategy: str  # "local" | "async"
    schedules: int = 500
    seconds: int = 15
    #: Every this many seconds the next scheduler process (round robin) gets the next action;
    #: None: no chaos.
    every: float | None = 3.0
    #: "kill": SIGKILL, then a new process in its place. "pause": SIGSTOP for ``pause``
    #: seconds, then SIGCONT (a long GC pause, a VM stall). "sever": every connection to the
    #: database is terminated by the server (``pg_terminate_backend``). "flush": FLUSHDB of the
    #: Redis database (the async strategy's schedule source and streams).
    actions: tuple[str, ...] = ("kill",)
    pause: float = 3.0
    #: No action in the last this-many seconds (to see that firing resumes by itself).
    quiet: float = 0.0
    schedulers: int = 3
    #: Async: taskiq worker child processes.
    workers: int = 2
    #: Time to start the processes before the first slot.
    warmup: float = 5.0
    #: How long the survivors may take to claim and run the backlog after the chaos.
    drain_timeout: float = 45.0


async def run_chaos(chaos: Chaos, database_url: str, logs: Path, *, redis_url: str | None = None) -> Account:
    if chaos.strategy == "async":
        assert redis_url, "the async strategy needs a Redis database of its own"
        await flush_redis(redis_url)
    runtime = chaos_runtime(database_url, strategy=chaos.strategy, redis_url=redis_url)
    fleet = Fleet(database_url, logs, strategy=chaos.strategy, redis_url=redis_url)
    try:
        await empty(runtime)
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=chaos.warmup + 1)
        job_ids = await every_second(runtime, chaos.schedules, first)
        if chaos.strategy == "local":
            names = start_local(fleet, chaos.schedulers)
        else:
            names = start_async(fleet, chaos.schedulers, chaos.workers)
        await asyncio.to_thread(wait_started, fleet, names)
        await _sleep_until(first)
        end = first + timedelta(seconds=chaos.seconds)
        events: list[tuple[str, datetime]] = []
        victims, actions = itertools.cycle(names), itertools.cycle(chaos.actions)
        next_at = time.monotonic() + (chaos.every or 0)
        calm = end - timedelta(seconds=chaos.quiet)
        while chaos.every and datetime.now(UTC) + timedelta(seconds=max(0.0, next_at - time.monotonic())) < calm:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += chaos.every
            action = next(actions)
            events.append((action, datetime.now(UTC)))
            if action == "kill":
                victim = next(victims)
                fleet.kill(victim)
                fleet.restart(victim)
            elif action == "pause":
                victim = next(victims)
                fleet.signal(victim, signal.SIGSTOP)
                fleet.pauses += 1
                await asyncio.sleep(chaos.pause)
                fleet.signal(victim, signal.SIGCONT)
            elif action == "sever":
                await sever_connections(database_url)
            elif action == "flush":
                await flush_redis(redis_url)
            else:
                raise ValueError(f"unknown chaos action {action!r}")
        await _sleep_until(end)
        until = end - timedelta(seconds=1)
        claimed = await wait_claimed(runtime, until, len(job_ids) * chaos.seconds, chaos.drain_timeout)
        await stop_firing(runtime)
        finished = claimed and await wait_finished(runtime, until, fleet.killed, chaos.drain_timeout)
        drained = (datetime.now(UTC) - end).total_seconds()
        crashed = [name for name in fleet.procs if not fleet.alive(name)]
        fleet.stop()
        settled = await settle_killed(runtime)
        result = await account(runtime, job_ids, first, until, fleet.ledger)
        result.kills, result.pauses = fleet.kills, fleet.pauses
        result.events, result.crashed, result.fleet = events, crashed, fleet
        result.drain_seconds = drained
        result.errors = fleet.errors()
        if not (claimed and finished):
            result.errors.insert(0, f"drain timed out (claimed: {claimed}, finished: {finished}); settled {settled}")
        return result
    finally:
        fleet.stop()
        await runtime.close()


async def sever_connections(database_url: str, admin_dsn: str = ADMIN_DSN) -> int:
    """Terminate every server connection to this one database (no other): what a PostgreSQL
    restart or failover does to the clients, without disturbing anyone else on the server."""
    database = make_url(database_url).database
    conn = await asyncpg.connect(admin_dsn)
    try:
        return await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()


async def flush_redis(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def _sleep_until(instant: datetime) -> None:
    await asyncio.sleep(max(0.0, (instant - datetime.now(UTC)).total_seconds()))
