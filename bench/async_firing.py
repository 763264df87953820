"""Firing lag of the async strategy, side by side with stock taskiq.

    python -m bench.async_firing --size small     # about four minutes
    python -m bench.async_firing --size full      # 10,000 schedules

Real processes on a real clock. Ours: two ``mercato worker scheduler`` and one
``mercato worker start --workers 2``, a PostgreSQL database of the run's own
(``mercato_bench_async_<pid>_<hex>``, dropped after each scenario), Redis DB 9. Stock: two
``taskiq scheduler bench.async_stock:scheduler --update-interval 1`` (``TaskiqScheduler`` +
``ListRedisScheduleSource``, one-shot ``time`` schedules: stock taskiq's only way to name an
exact second) and one ``taskiq worker``, Redis DB 10.

- **spread**: N schedules, one slot a minute each, spread over the minute's seconds (stock:
  N one-shot schedules spread the same way). Lag = run started minus slot (p50/p99); ours also
  shows "fired" = run sent to the stream minus slot. Duplicates = runs beyond one per slot.
- **burst**: N slots in the same second: until every one is sent, and until every one has run.
- **new**: one schedule saved 2 s before its slot; stock with its default ``--update-interval``
  (60 s), as most deployments run it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from redis.asyncio import Redis

from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.runtime import Runtime
from app.settings import load_settings
from app.strategies.taskiq_sync import reconcile_all
from bench.support import fresh_pg, pct

UTC = UTC
SIZES = {"small": {"n": 600, "seconds": 20, "burst": 1000}, "full": {"n": 10_000, "seconds": 60, "burst": 10_000}}
OUR_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
STOCK_REDIS = os.environ.get("BENCH_STOCK_REDIS_URL", "redis://127.0.0.1:6379/10")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    setup: str
    scenario: str
    n: int
    figures: dict[str, str]


class Processes:
    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env, self.procs = logs, env, []

    def start(self, name: str, *argv: str) -> None:
        log = open(self.logs / f"{name}.log", "w")
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", *argv], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []


# ----- ours ----------------------------------------------------------------------------------------


async def _flush(url: str) -> None:
    redis = Redis.from_url(url)
    await redis.flushdb()
    await redis.aclose()


def _env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "QUEUE_STRATEGY": "async",
        "REDIS_URL": OUR_REDIS,
        "SCHEDULER_MIN_INTERVAL_SECONDS": "1",
        "DATABASE_POOL_SIZE": "5",
        "LOG_LEVEL": "warning",
    }


async def _ours(logs: Path, body) -> Row:
    database = await fresh_pg("async")
    await _flush(OUR_REDIS)
    env = _env(database.url)
    runtime = Runtime.create(load_settings(env))
    processes = Processes(logs, env)
    for i in (1, 2):
        processes.start(f"scheduler-{i}", "app.cli", "worker", "scheduler")
    processes.start("worker", "app.cli", "worker", "start", "--workers", "2")
    try:
        await asyncio.sleep(4)  # processes up
        return await body(runtime)
    finally:
        processes.stop()
        await runtime.close()
        await database.drop()


async def _create(runtime: Runtime, definitions: list[dict]) -> list[ScheduledJob]:
    gate = asyncio.Semaphore(8)

    async def one(data):
        async with gate:
            return await runtime.scheduler.create(data)

    return await asyncio.gather(*(one(d) for d in definitions))


def _noop(i: int, **schedule) -> dict:
    return {
        "name": f"bench {i}",
        "scope_type": "system",
        "target_type": "command",
        "target_command": "demo.echo",
        "target_payload": {},
        **schedule,
    }


async def _runs(runtime: Runtime) -> list[ScheduledJobRun]:
    """Runs of the benchmark's schedules (not of the built-in cleanup)."""
    async with runtime.sessions() as session:
        bench = sa.select(ScheduledJob.id).where(ScheduledJob.name.like("bench %"))
        return list(
            await session.scalars(
                sa.select(ScheduledJobRun).where(ScheduledJobRun.trigger != "manual", ScheduledJobRun.job_id.in_(bench))
            )
        )


async def ours_spread(runtime: Runtime, n: int, seconds: int) -> Row:
    await _create(runtime, [_noop(i, schedule_type="cron", schedule_value=f"{i % 60} * * * * *") for i in range(n)])
    counted_from = datetime.now(UTC) + timedelta(seconds=1)
    await asyncio.sleep(seconds)
    until = datetime.now(UTC) - timedelta(seconds=3)
    await asyncio.sleep(3)
    runs = [r for r in await _runs(runtime) if counted_from <= r.scheduled_for <= until]
    started = [r for r in runs if r.started_at]
    duplicates = sum(
        c - 1 for c in Counter((r.job_id, r.scheduled_for) for r in runs if r.trigger == "scheduled").values()
    )
    return Row(
        "ours",
        "spread",
        n,
        {
            "runs": f"{len(started):,}",
            "lag p50": _ms(pct([_s(r.started_at, r.scheduled_for) for r in started], 50)),
            "lag p99": _ms(pct([_s(r.started_at, r.scheduled_for) for r in started], 99)),
            "fired p50": _ms(pct([_s(r.enqueued_at, r.scheduled_for) for r in runs], 50)),
            "fired p99": _ms(pct([_s(r.enqueued_at, r.scheduled_for) for r in runs], 99)),
            "duplicates": str(duplicates),
            "missed": str(sum(r.status == "missed" for r in runs)),
        },
    )


async def ours_burst(runtime: Runtime, n: int) -> Row:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    await _create(
        runtime, [_noop(i, schedule_type="interval", schedule_value="1h", start_at=later.isoformat()) for i in range(n)]
    )
    # All of them move to one slot a few seconds ahead in one statement; Redis is rebuilt from
    # the database (what the scheduler's periodic reconcile does).
    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    async with runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.name.like("bench %"))
            .values(start_at=slot, anchor_at=slot, next_run_at=slot)
        )
    await reconcile_all(runtime)
    await _until(lambda runs: len(runs) == n and all(r.finished_at for r in runs), runtime, slot, 180)
    runs = await _runs(runtime)
    return Row(
        "ours",
        "burst",
        n,
        {
            "runs": f"{sum(r.status == 'succeeded' for r in runs):,}",
            "all sent": _ms(_s(max(r.enqueued_at for r in runs), slot)),
            "all finished": _ms(_s(max(r.finished_at for r in runs if r.finished_at), slot)),
        },
    )


async def ours_new(runtime: Runtime) -> Row:
    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    await asyncio.sleep(max(0.0, _s(slot, datetime.now(UTC)) - 2))
    await _create(runtime, [_noop(0, schedule_type="cron", schedule_value=f"{slot.second} * * * * *")])
    await _until(lambda runs: any(r.started_at for r in runs), runtime, slot, 10)
    [run] = [r for r in await _runs(runtime) if r.started_at]
    return Row("ours", "new", 1, {"lag p50": _ms(_s(run.started_at, run.scheduled_for))})


async def _until(done, runtime: Runtime, slot: datetime, timeout: float) -> None:
    deadline = time.monotonic() + _s(slot, datetime.now(UTC)) + timeout
    while time.monotonic() < deadline and not done(await _runs(runtime)):
        await asyncio.sleep(0.5)


# ----- stock taskiq ----------------------------------------------------------------------------------


async def _stock(logs: Path, body, *, update_interval: str | None = "1", schedulers: int = 2) -> Row:
    from bench.async_stock import source

    await _flush(STOCK_REDIS)
    env = {**os.environ, "BENCH_STOCK_REDIS_URL": STOCK_REDIS}
    processes = Processes(logs, env)
    extra = ["--update-interval", update_interval] if update_interval else []
    for i in range(schedulers):
        processes.start(f"stock-scheduler-{i}", "taskiq", "scheduler", "bench.async_stock:scheduler", *extra)
    processes.start("stock-worker", "taskiq", "worker", "bench.async_stock:broker", "--workers", "2")
    await source.startup()
    try:
        await asyncio.sleep(4)
        return await body(source)
    finally:
        processes.stop()
        await source.shutdown()


async def _add_one_shots(source, slots: list[datetime]) -> None:
    from taskiq import ScheduledTask

    for i, slot in enumerate(slots):
        await source.add_schedule(
            ScheduledTask(
                task_name="bench.record",
                labels={},
                args=[],
                kwargs={"slot": f"{slot.isoformat()}#{i}"},
                time=slot,
            )
        )


async def _stock_runs() -> list[tuple[str, datetime, float]]:
    from bench.async_stock import RUNS_KEY

    redis = Redis.from_url(STOCK_REDIS)
    try:
        raw = await redis.lrange(RUNS_KEY, 0, -1)
    finally:
        await redis.aclose()
    rows = [json.loads(r) for r in raw]
    return [(r["slot"], datetime.fromisoformat(r["slot"].split("#")[0]), r["at"]) for r in rows]


def _stock_figures(runs, n: int) -> dict[str, str]:
    first = {}
    for key, slot, at in sorted(runs, key=lambda r: r[2]):
        first.setdefault(key, at - slot.timestamp())
    lags = list(first.values()) or [float("nan")]
    return {
        "runs": f"{len(first):,} of {n:,}",
        "lag p50": _ms(pct(lags, 50)),
        "lag p99": _ms(pct(lags, 99)),
        "duplicates": str(len(runs) - len(first)),
    }


async def stock_spread(source, n: int, seconds: int) -> Row:
    # The same slots per second as ours (N a minute), for the seconds the window lasts.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    slots = [start + timedelta(seconds=i % 60) for i in range(n) if i % 60 < seconds]
    await _add_one_shots(source, slots)
    await asyncio.sleep(_s(start, datetime.now(UTC)) + seconds + 3)
    return Row("stock", "spread", n, _stock_figures(await _stock_runs(), len(slots)))


async def stock_burst(source, n: int) -> Row:
    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    await _add_one_shots(source, [slot] * n)
    deadline = time.monotonic() + _s(slot, datetime.now(UTC)) + 180
    while time.monotonic() < deadline and len({k for k, _, _ in await _stock_runs()}) < n:
        await asyncio.sleep(0.5)
    runs = await _stock_runs()
    figures = _stock_figures(runs, n)
    figures["all finished"] = _ms(max(at for _, _, at in runs) - slot.timestamp()) if runs else "-"
    return Row("stock", "burst", n, figures)


async def stock_new(source) -> Row:
    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    await asyncio.sleep(max(0.0, _s(slot, datetime.now(UTC)) - 2))
    await _add_one_shots(source, [slot])
    deadline = time.monotonic() + 75
    while time.monotonic() < deadline and not await _stock_runs():
        await asyncio.sleep(0.5)
    runs = await _stock_runs()
    lag = _stock_figures(runs, 1)["lag p50"] if runs else "not run within 75 s"
    return Row("stock (update interval 60 s)", "new", 1, {"lag p50": lag})


# ----- output ---------------------------------------------------------------------------------------


def _s(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _table(rows: list[Row]) -> str:
    columns = ["setup", "scenario", "N"] + list(dict.fromkeys(k for r in rows for k in r.figures))
    lines = [[r.setup, r.scenario, f"{r.n:,}"] + [r.figures.get(c, "") for c in columns[3:]] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(out)


async def main(size: str, only: str | None) -> None:
    n, seconds, burst = SIZES[size]["n"], SIZES[size]["seconds"], SIZES[size]["burst"]
    scenarios = [
        ("ours", "spread", lambda logs: _ours(logs, lambda rt: ours_spread(rt, n, seconds))),
        ("ours", "burst", lambda logs: _ours(logs, lambda rt: ours_burst(rt, burst))),
        ("ours", "new", lambda logs: _ours(logs, ours_new)),
        ("stock", "spread", lambda logs: _stock(logs, lambda src: stock_spread(src, n, seconds))),
        ("stock", "burst", lambda logs: _stock(logs, lambda src: stock_burst(src, burst))),
        ("stock", "new", lambda logs: _stock(logs, stock_new, update_interval=None, schedulers=1)),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for setup, scenario, run in scenarios:
            if only and only != setup:
                continue
            started = time.monotonic()
            rows.append(await run(Path(tmp)))
            print(f"  {setup} {scenario}: done in {time.monotonic() - started:.0f} s", flush=True)
    print()
    print(_table(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--only", choices=["ours", "stock"], help="Run one side only.")
    args = parser.parse_args()
    asyncio.run(main(args.size, args.only))
