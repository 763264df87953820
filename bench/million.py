"""Many enabled schedules spread over a day: the scheduler's memory, idle CPU and firing lag.

    python -m bench.million --size small|full

N daily cron schedules (6-field cron with seconds) whose slots are spread evenly over the 24
hours, bulk-loaded into PostgreSQL, the first slot a little after the scheduler starts. One
``mercato scheduler start`` process (local strategy). Measured from /proc: its resident memory
(and peak), its CPU while nothing is due (the first seconds, before the first slot: "idle
between slots"), then its CPU and the firing lag (run started minus slot) while the slots
come due, N / 86,400 a second.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from bench.support import (
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
    utcnow,
    verdict,
)

SIZES = {
    # load: seconds allowed for the bulk load (the first slot is placed after load + warm-up + idle).
    "small": {"n": 100_000, "idle": 6, "firing": 12, "load": 9},
    "full": {"n": 1_000_000, "idle": 30, "firing": 60, "load": 120},
}
DAY = 86_400
#: Time for the scheduler to start before the idle window is measured.
WARM_UP = 4


async def main(size: str) -> Table:
    sizes = SIZES[size]
    n = sizes["n"]
    database = await fresh_pg("million")
    url = database.url
    now = utcnow().replace(microsecond=0)
    first = now + timedelta(seconds=sizes["load"] + WARM_UP + sizes["idle"])

    def rows():
        for i in range(n):
            slot = first + timedelta(seconds=i * DAY // n)
            local = slot.hour * 3600 + slot.minute * 60 + slot.second
            cron = f"{local % 60} {local // 60 % 60} {local // 3600} * * *"
            yield job_row(f"daily-{i:07d}", now, schedule_type="cron", schedule_value=cron, next_run_at=slot)

    log(f"million: loading {n:,} schedules")
    await copy_rows(url, "scheduled_jobs", rows())
    await analyze(url)
    table = Table(
        f"{n:,} enabled schedules spread over a day (local strategy, PostgreSQL)", ["measure", "value", "target", ""]
    )
    with tempfile.TemporaryDirectory() as tmp:
        process = SchedulerProcess(url, Path(tmp) / "scheduler.log")
        watch = await pg_connect(url)
        try:
            await process.start()
            await asyncio.sleep(WARM_UP)
            idle_from, cpu = utcnow(), process.cpu_seconds()
            await asyncio.sleep(max(1.0, (first - utcnow()).total_seconds() - 0.5))
            idle_cpu = (process.cpu_seconds() - cpu) / (utcnow() - idle_from).total_seconds()
            rss_idle, _ = process.memory_mb()
            await asyncio.sleep(max(0.0, (first - utcnow()).total_seconds()))
            cpu = process.cpu_seconds()
            log(f"million: firing for {sizes['firing']} s")
            await asyncio.sleep(sizes["firing"])
            busy_cpu = (process.cpu_seconds() - cpu) / sizes["firing"]
            rss, peak = process.memory_mb()
            end = first + timedelta(seconds=sizes["firing"] - 2)  # slots whose runs had time to start
            runs = await watch.fetch(
                "SELECT extract(epoch FROM started_at - scheduled_for) AS lag, "
                "extract(epoch FROM enqueued_at - scheduled_for) AS claim FROM scheduled_job_runs "
                "WHERE scheduled_for >= $1 AND scheduled_for < $2 AND trigger = 'scheduled'",
                first,
                end,
            )
            expected = sum(1 for i in range(n) if first + timedelta(seconds=i * DAY // n) < end)
            not_started = sum(1 for r in runs if r["lag"] is None)
        finally:
            await watch.close()
            await process.stop()
            await database.drop()
    lags = [float(r["lag"]) for r in runs if r["lag"] is not None]
    claims = [float(r["claim"]) for r in runs if r["claim"] is not None]
    table.add(
        "resident memory (idle / after firing / peak)",
        f"{rss_idle:,.0f} / {rss:,.0f} / {peak:,.0f} MiB",
        "< 300 MB",
        verdict(peak * 1.048576, 300),
    )
    table.add("CPU while nothing is due", f"{idle_cpu * 100:.1f} % of a core", "< 5 %", verdict(idle_cpu * 100, 5))
    table.add(f"CPU while firing ({n / DAY:,.1f} slots/s)", f"{busy_cpu * 100:.1f} % of a core", "", "")
    table.add(
        "slots due in the window / runs started",
        f"{expected:,} / {len(lags):,}" + (f" ({not_started} not started)" if not_started else ""),
        "all",
        "ok" if len(lags) >= expected else "missed",
    )
    table.add(
        "firing lag p50 / p99 (run started - slot)",
        f"{ms(pct(lags, 50))} / {ms(pct(lags, 99))}",
        "p99 < 1 s",
        verdict(pct(lags, 99), 1.0),
    )
    table.add("claim lag p50 / p99 (run queued - slot)", f"{ms(pct(claims, 50))} / {ms(pct(claims, 99))}", "", "")
    table.notes.append(
        f"Idle: {sizes['idle']} s before the first slot; firing: {sizes['firing']} s of slots. "
        "'Idle' is the scheduler's own CPU, from /proc/<pid>/stat."
    )
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    print(asyncio.run(main(parser.parse_args().size)).render())
