"""Firing lag of the local strategy, on PostgreSQL and SQLite.

    python -m bench.local_firing --size small     # about a minute and a half
    python -m bench.local_firing --size full      # 10,000 schedules (the figures in the README)

Two scenarios, each with one in-process poller (``LocalScheduler.run()``) on a real clock and
no-op targets:

- **spread**: N enabled schedules, one slot a minute each, spread evenly over the minute's
  seconds. Lag = run started minus slot (p50/p99), and claim lag = run enqueued minus slot.
- **burst**: N schedules due in the same second. Time from that second until every slot is
  claimed and queued, and until every no-op target has finished.

PostgreSQL is a database of the run's own (``mercato_bench_local_firing_<pid>_<hex>``, dropped
after each scenario) on the server of ``BENCH_PG_ADMIN_DSN`` (default: the local test server);
SQLite is a fresh file in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.runtime import Runtime
from app.strategies.local import LocalScheduler
from bench.support import bench_runtime, fresh_pg, fresh_sqlite, pct

SIZES = {"small": {"n": 1000, "spread_seconds": 15}, "full": {"n": 10_000, "spread_seconds": 60}}
#: The burst gives up after this many seconds.
LIMIT = 120


@dataclass
class Row:
    backend: str
    scenario: str
    n: int
    figures: dict[str, str]


async def _create(runtime: Runtime, definitions: list[dict]) -> None:
    gate = asyncio.Semaphore(8)

    async def one(data):
        async with gate:
            await runtime.scheduler.create(data)

    await asyncio.gather(*(one(d) for d in definitions))


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
    async with runtime.sessions() as session:
        return list(await session.scalars(sa.select(ScheduledJobRun).where(ScheduledJobRun.trigger != "manual")))


async def _finished(runtime: Runtime) -> int:
    """A cheap count: the poller shares this process, loading every row would slow it down."""
    async with runtime.sessions() as session:
        return await session.scalar(
            sa.select(sa.func.count()).select_from(ScheduledJobRun).where(ScheduledJobRun.finished_at.is_not(None))
        )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


async def spread(url: str, backend: str, n: int, seconds: int) -> Row:
    runtime = bench_runtime(url)
    try:
        # One slot a minute each, on second i % 60: N/60 schedules due every second.
        await _create(runtime, [_noop(i, schedule_type="cron", schedule_value=f"{i % 60} * * * * *") for i in range(n)])
        poller = LocalScheduler(runtime)
        task = asyncio.create_task(poller.run())
        # Slots that fell due while the schedules were being created are late by then: not counted.
        counted_from = datetime.now(UTC) + timedelta(seconds=1)
        await asyncio.sleep(seconds)
        poller.stop()
        await task
        runs = [r for r in await _runs(runtime) if r.started_at is not None and r.scheduled_for >= counted_from]
        lag = [(r.started_at - r.scheduled_for).total_seconds() for r in runs]
        claim = [(r.enqueued_at - r.scheduled_for).total_seconds() for r in runs]
        missed = sum(1 for r in await _runs(runtime) if r.status == "missed" and r.scheduled_for >= counted_from)
        return Row(
            backend,
            "spread",
            n,
            {
                "runs": f"{len(runs):,}",
                "lag p50": _ms(pct(lag, 50)),
                "lag p99": _ms(pct(lag, 99)),
                "claim p50": _ms(pct(claim, 50)),
                "claim p99": _ms(pct(claim, 99)),
                "missed": str(missed),
            },
        )
    finally:
        await runtime.close()


async def burst(url: str, backend: str, n: int) -> Row:
    runtime = bench_runtime(url)
    try:
        later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        await _create(
            runtime,
            [_noop(i, schedule_type="interval", schedule_value="1h", start_at=later.isoformat()) for i in range(n)],
        )
        # Then all of them move to one slot two seconds ahead, in one statement.
        slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        async with runtime.sessions.begin() as session:
            await session.execute(sa.update(ScheduledJob).values(start_at=slot, anchor_at=slot, next_run_at=slot))
        poller = LocalScheduler(runtime)
        task = asyncio.create_task(poller.run())
        deadline = time.monotonic() + (slot - datetime.now(UTC)).total_seconds() + LIMIT
        while time.monotonic() < deadline and await _finished(runtime) < n:
            await asyncio.sleep(0.5)
        poller.stop()
        await task
        runs = await _runs(runtime)
        queued = max(r.enqueued_at for r in runs) - slot
        done = [r.finished_at for r in runs if r.finished_at]
        finished = _ms((max(done) - slot).total_seconds()) if len(done) == n else f"not in {LIMIT} s"
        return Row(
            backend,
            "burst",
            n,
            {
                "runs": f"{sum(1 for r in runs if r.status == 'succeeded'):,}",
                "all queued": _ms(queued.total_seconds()) if len(runs) == n else f"not in {LIMIT} s",
                "all finished": finished,
            },
        )
    finally:
        await runtime.close()


def _table(rows: list[Row]) -> str:
    columns = ["backend", "scenario", "N"] + list(dict.fromkeys(k for r in rows for k in r.figures))
    lines = [[r.backend, r.scenario, f"{r.n:,}"] + [r.figures.get(c, "") for c in columns[3:]] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(out)


async def main(size: str, backends: list[str]) -> None:
    n, seconds = SIZES[size]["n"], SIZES[size]["spread_seconds"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            for scenario in ("spread", "burst"):
                database = await fresh_pg("local_firing") if backend == "postgresql" else None
                url = database.url if database else await asyncio.to_thread(fresh_sqlite, Path(tmp), scenario)
                started = time.monotonic()
                try:
                    row = await (spread(url, backend, n, seconds) if scenario == "spread" else burst(url, backend, n))
                finally:
                    if database:
                        await database.drop()
                rows.append(row)
                print(f"  {backend} {scenario}: done in {time.monotonic() - started:.0f} s", flush=True)
    print()
    print(_table(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument(
        "--backend",
        choices=["postgresql", "sqlite"],
        action="append",
        help="Only this backend (may repeat); default: both.",
    )
    args = parser.parse_args()
    asyncio.run(main(args.size, args.backend or ["postgresql", "sqlite"]))
