"""History cleanup of many expired runs while the scheduler keeps firing.

    python -m bench.cleanup --size small|full

R finished runs older than the retention (8 days old; retention 7 days) are generated inside
PostgreSQL (``INSERT ... SELECT generate_series``), plus K every-minute schedules spread over
the minute's seconds. One ``mercato scheduler start`` process fires them; after a baseline
window, ``mercato scheduler cleanup`` (another process, the same code as the daily built-in
job) deletes the expired runs in batches. Reported: rows deleted, how long it took, and the
firing lag p50/p99 before and during the cleanup.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.support import (
    ROOT,
    SchedulerProcess,
    Table,
    analyze,
    copy_rows,
    fresh_pg,
    job_row,
    log,
    ms,
    pct,
    pg_connect,
    secs,
    utcnow,
    verdict,
)

SIZES = {
    "small": {"runs": 500_000, "schedules": 1_200, "baseline": 8},
    "full": {"runs": 10_000_000, "schedules": 1_200, "baseline": 20},
}
#: Expired runs belong to this many schedules (the schedules themselves are long gone).
OLD_SCHEDULES = 5_000

GENERATE = """
INSERT INTO scheduled_job_runs (id, job_id, scheduled_for, trigger, status, attempt, not_before, enqueued_at,
                                started_at, finished_at, duration_ms, created_at)
SELECT gen_random_uuid()::text, 'expired-' || (g % $2), t, 'scheduled', 'succeeded', 1, t, t, t,
       t + interval '12 milliseconds', 12, t
FROM generate_series(1, $1) AS g, LATERAL (SELECT $3::timestamptz - (g * interval '1 second') AS t) AS s
"""


async def _cli(url: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "DATABASE_URL": url, "LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        env=env,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode().strip()


async def _lags(watch, start, end) -> list[float]:
    rows = await watch.fetch(
        "SELECT extract(epoch FROM started_at - scheduled_for) AS lag FROM scheduled_job_runs "
        "WHERE trigger = 'scheduled' AND scheduled_for >= $1 AND scheduled_for < $2 AND started_at IS NOT NULL",
        start,
        end,
    )
    return [float(r["lag"]) for r in rows]


async def main(size: str) -> Table:
    sizes = SIZES[size]
    database = await fresh_pg("cleanup")
    url = database.url
    now = utcnow().replace(microsecond=0)
    watch = await pg_connect(url)
    table = Table(
        f"History cleanup of {sizes['runs']:,} expired runs while {sizes['schedules']:,} "
        "every-minute schedules fire (PostgreSQL)",
        ["measure", "value", "target", ""],
    )
    try:
        log(f"cleanup: generating {sizes['runs']:,} expired runs")
        started = time.perf_counter()
        await watch.execute(GENERATE, sizes["runs"], OLD_SCHEDULES, now - timedelta(days=8))
        log(f"cleanup: generated in {time.perf_counter() - started:.0f} s")
        first = now + timedelta(seconds=3)
        await copy_rows(
            url,
            "scheduled_jobs",
            (
                job_row(
                    f"minutely-{i:05d}",
                    now,
                    schedule_type="cron",
                    schedule_value=f"{i % 60} * * * * *",
                    next_run_at=first + timedelta(seconds=(i % 60 - first.second) % 60),
                )
                for i in range(sizes["schedules"])
            ),
        )
        await analyze(url)
        with tempfile.TemporaryDirectory() as tmp:
            process = SchedulerProcess(url, Path(tmp) / "scheduler.log")
            await process.start()
            try:
                await asyncio.sleep(2)  # the first round after start catches up with slots due during the load
                base_from = utcnow()
                await asyncio.sleep(sizes["baseline"])
                clean_from = utcnow()
                code, out = await _cli(url, "scheduler", "cleanup")
                clean_to = utcnow()
                await asyncio.sleep(2)  # let the last slots of the window start
            finally:
                await process.stop()
        baseline = await _lags(watch, base_from, clean_from)
        during = await _lags(watch, clean_from, clean_to)
        left = await watch.fetchval("SELECT count(*) FROM scheduled_job_runs WHERE job_id LIKE 'expired-%'")
    finally:
        await watch.close()
        await database.drop()
    took = (clean_to - clean_from).total_seconds()
    table.add(
        "cleanup (mercato scheduler cleanup)",
        # The runs' line (the command also reports the deleted schedules it purged).
        f"{next((line for line in out.splitlines() if line.startswith('deleted ')), code)} in {secs(took)}",
        "completes",
        "ok" if code == 0 and left == 0 else f"exit {code}, {left:,} left",
    )
    table.add("deletion rate", f"{sizes['runs'] / took:,.0f} runs/s", "", "")
    table.add(
        "firing lag before: p50 / p99",
        f"{ms(pct(baseline, 50))} / {ms(pct(baseline, 99))} ({len(baseline):,} runs)",
        "",
        "",
    )
    table.add(
        "firing lag during cleanup: p50 / p99",
        f"{ms(pct(during, 50))} / {ms(pct(during, 99))} ({len(during):,} runs)",
        "p99 < 1 s",
        verdict(pct(during, 99), 1.0),
    )
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    print(asyncio.run(main(parser.parse_args().size)).render())
