"""What capturing run logs costs: the local 10,000-run burst with a target that logs, against
the same target logging nothing, in the same run.

    python -m bench.run_logs --size small     # 3 rounds, about two minutes
    python -m bench.run_logs --size full      # 7 rounds

Each burst: N schedules due at one and the same instant on a PostgreSQL database of its own
(``mercato_bench_run_logs_<pid>_<hex>``, dropped after it), one in-process poller
(``LocalScheduler.run()``) on a real clock, as ``bench.local_firing``'s burst. "All finished" is
from the slot to the newest ``finished_at`` once every run has succeeded; "CPU" is this
process's CPU time from the slot until then (the poller and the targets run here). Variants:

- **no lines**: the bench target logs nothing (``{"lines": 0}``);
- **3 lines**: it logs three lines per run, kept with the run (30,000 rows for 10,000 runs);
- **3 lines, capture off**: three lines per run with ``SCHEDULER_RUN_LOG_MAX_LINES=0``.

The variants take turns within each round (in a rotated order), so that a machine whose load
drifts during the run weighs on each alike; the table gives each one's median and best, and
the overhead: the median over the rounds of a variant's figure over "no lines" in the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from app.domain.registry import TargetContext, registry
from app.persistence.models import ScheduledJobRun, ScheduledJobRunLog
from app.strategies.local import LocalScheduler
from bench.support import Table, analyze, bench_runtime, copy_rows, fresh_pg, job_row, log, ms, utcnow

SIZES = {"small": {"n": 10_000, "rounds": 3}, "full": {"n": 10_000, "rounds": 7}}
#: A burst gives up after this many seconds.
LIMIT = 120
#: The poller starts this long before the slot.
LEAD = timedelta(seconds=2)
TARGET = "bench.logging"


@registry.command(TARGET, label="Bench: log lines", schedulable=True)
async def log_lines(payload: dict[str, Any], ctx: TargetContext) -> None:
    for i in range(int(payload.get("lines", 0))):
        ctx.log.info("line %d of the run of %s", i + 1, ctx.job_id)


@dataclass(frozen=True)
class Variant:
    name: str
    lines: int
    max_lines: int = 1000


VARIANTS = (
    Variant("no lines", 0),
    Variant("3 lines", 3),
    Variant("3 lines, capture off", 3, max_lines=0),
)


@dataclass
class Figures:
    finished: list[float | None] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)


def _paired(figures: list[float | None], base: list[float | None]) -> str:
    """The median over the rounds of a variant's figure over "no lines" in the same round: the
    load of a shared machine drifts between rounds more than within one."""
    ratios = [f / b - 1 for f, b in zip(figures, base) if f is not None and b]
    return f"{statistics.median(ratios) * 100:+.1f} %" if ratios else "-"


async def _count(runtime: Any, model: Any, *where: Any) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


async def burst(n: int, variant: Variant) -> tuple[float | None, float, int]:
    """One burst: (seconds from the slot until all finished or None, CPU seconds, lines kept)."""
    database = await fresh_pg("run_logs")
    try:
        now = utcnow().replace(microsecond=0)
        slot = now + timedelta(seconds=30)  # moved closer once loaded
        payload = {"lines": variant.lines}
        await copy_rows(
            database.url,
            "scheduled_jobs",
            (
                job_row(f"logs-{i:06d}", now, target_command=TARGET, target_payload=payload, next_run_at=slot)
                for i in range(n)
            ),
        )
        await analyze(database.url)
        runtime = bench_runtime(database.url, scheduler_run_log_max_lines=variant.max_lines)
        try:
            slot = utcnow().replace(microsecond=0) + LEAD + timedelta(seconds=1)
            async with runtime.sessions.begin() as session:
                await session.execute(
                    sa.text("UPDATE scheduled_jobs SET next_run_at = :slot, anchor_at = :slot"), {"slot": slot}
                )
            poller = LocalScheduler(runtime)
            task = asyncio.create_task(poller.run())
            await asyncio.sleep(max(0.0, (slot - utcnow()).total_seconds()))
            cpu_before = time.process_time()
            deadline = time.monotonic() + LIMIT
            finished = ScheduledJobRun.finished_at.is_not(None)
            while time.monotonic() < deadline and await _count(runtime, ScheduledJobRun, finished) < n:
                await asyncio.sleep(0.1)
            cpu = time.process_time() - cpu_before
            poller.stop()
            await task
            async with runtime.sessions() as session:
                ok, newest = (
                    await session.execute(
                        sa.select(
                            sa.func.count().filter(ScheduledJobRun.status == "succeeded"),
                            sa.func.max(ScheduledJobRun.finished_at),
                        )
                    )
                ).one()
            kept = await _count(runtime, ScheduledJobRunLog)
        finally:
            await runtime.close()
    finally:
        await database.drop()
    return ((newest - slot).total_seconds() if ok == n else None), cpu, kept


async def main(size: str) -> None:
    n, rounds = SIZES[size]["n"], SIZES[size]["rounds"]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  load average at start: {load}", flush=True)
    figures = {v.name: Figures() for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for variant in order:
            finished, cpu, kept = await burst(n, variant)
            got = figures[variant.name]
            got.finished.append(finished)
            got.cpu.append(cpu)
            got.kept.append(kept)
            log(f"round {r + 1}, {variant.name}: all finished {ms(finished)}, CPU {cpu:.2f} s, {kept:,} lines kept")
    base = figures["no lines"]
    table = Table(
        f"Run logs: a burst of {n:,} at one instant, {rounds} rounds (PostgreSQL, local strategy)",
        [
            "variant",
            "lines kept",
            "all finished (median)",
            "best",
            "CPU (median)",
            "time vs no lines",
            "CPU vs no lines",
        ],
    )
    for variant in VARIANTS:
        got = figures[variant.name]
        done = [f for f in got.finished if f is not None]
        other = variant.name != "no lines"
        table.add(
            variant.name,
            f"{max(got.kept):,}",
            ms(statistics.median(done)) if len(done) == rounds else f"not in {LIMIT} s",
            ms(min(done)) if done else "-",
            f"{statistics.median(got.cpu):.2f} s",
            _paired(got.finished, base.finished) if other else "",
            _paired(list(got.cpu), list(base.cpu)) if other else "",
        )
    table.notes.append("vs no lines: the median over the rounds of the variant over 'no lines' in the same round")
    table.notes.append(f"load average at start: {load}; target: capturing costs under 10 % of the burst's time")
    print()
    print(table.render())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    asyncio.run(main(parser.parse_args().size))
