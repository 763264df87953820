"""Bursts: many schedules due at once, our local strategy beside APScheduler 4.

    python -m bench.bursts --size small|full

- **same instant**: N schedules whose slot is one and the same instant. Time from the slot
  until every slot is claimed and its run queued, and until every no-op target has finished
  with its history written (run row ``succeeded``, timings recorded).
- **same second**: M schedules due within one second (slots spread over its milliseconds).
  Time until all are claimed and queued.

Ours: ``mercato scheduler start`` (local strategy) in a process of its own on PostgreSQL; this
process watches the run table every 50 ms (the "claimed" figure has that resolution; the
"finished" figure is the newest ``finished_at``). APScheduler 4 (pre-release) runs in this
process with its SQLAlchemy data store on the same PostgreSQL server and the same schedule
shape (interval 1 h, first fire at the slot): "claimed" is its last ``JobAdded`` event (the job
is in its job table), "finished" the last ``JobReleased`` (the result is written; APScheduler
keeps no history beyond that). Schedules are bulk-loaded for both; loading is not timed.

For the burst at one instant, the stock taskiq setup too (``TaskiqScheduler`` +
``ListRedisScheduleSource`` + ``RedisStreamBroker``, one scheduler and a worker with two
processes, as in ``bench.async_firing``; one scheduler, as two would send every task twice):
N one-shot no-op tasks for the same instant; "finished" is when its last task ran (it writes no
history).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timedelta
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
    secs,
    utcnow,
    verdict,
)

SIZES = {
    # APScheduler gets "rival_wait" seconds per burst; if it has not finished by then the table says how far it got.
    "small": {"instant": 10_000, "second": 20_000, "wait": 30.0, "rival_wait": 12.0},
    "full": {"instant": 10_000, "second": 100_000, "wait": 180.0, "rival_wait": 120.0},
}
#: The scheduler gets this long to start before the first slot.
LEAD = timedelta(seconds=6)


def _slots(n: int, first: datetime, spread_ms: int) -> list[datetime]:
    return [first + timedelta(milliseconds=(i * spread_ms) // n) for i in range(n)]


async def ours(
    n: int, spread_ms: int, *, wait_finished: bool, wait: float, logs: Path
) -> dict[str, float | int | None]:
    """Our local strategy; returns the figures of one burst."""
    database = await fresh_pg("burst")
    url = database.url
    now = utcnow().replace(microsecond=0)
    first = now + LEAD
    slots = _slots(n, first, spread_ms)
    await copy_rows(
        url,
        "scheduled_jobs",
        (job_row(f"burst-{i:06d}", now, anchor_at=slot, next_run_at=slot) for i, slot in enumerate(slots)),
    )
    await analyze(url)
    process = SchedulerProcess(url, logs / "scheduler-burst.log")
    await process.start()
    watch = await pg_connect(url)
    figures: dict[str, float | int | None] = {"claimed": None, "finished": None}
    try:
        await asyncio.sleep(max(0.0, (first - utcnow()).total_seconds()))
        cpu_before = process.cpu_seconds()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            claimed, finished = await watch.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE finished_at IS NOT NULL) FROM scheduled_job_runs"
            )
            if figures["claimed"] is None and claimed >= n:
                figures["claimed"] = (utcnow() - first).total_seconds()
                if not wait_finished:
                    break
            if finished >= n:
                break
            await asyncio.sleep(0.05)
        figures["cpu"] = process.cpu_seconds() - cpu_before
        row = await watch.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'succeeded') AS ok, max(enqueued_at) AS enqueued, "
            "max(finished_at) AS finished, count(*) AS runs FROM scheduled_job_runs"
        )
        figures["runs"] = row["runs"]
        figures["succeeded"] = row["ok"]
        figures["enqueued_clock"] = (row["enqueued"] - first).total_seconds() if row["enqueued"] else None
        if wait_finished and row["ok"] == n:
            figures["finished"] = (row["finished"] - first).total_seconds()
        lags = await watch.fetch(
            "SELECT extract(epoch FROM started_at - scheduled_for) AS lag FROM scheduled_job_runs "
            "WHERE started_at IS NOT NULL"
        )
        figures["lag_p50"] = pct([r["lag"] for r in lags], 50)
        figures["lag_p99"] = pct([r["lag"] for r in lags], 99)
    finally:
        await watch.close()
        await process.stop()
        await database.drop()
    return figures


async def apscheduler(
    n: int, spread_ms: int, *, wait_finished: bool, wait: float
) -> dict[str, float | int | None] | str:
    """APScheduler 4 with its SQLAlchemy data store on PostgreSQL; a reason string if unavailable."""
    try:
        from apscheduler import AsyncScheduler, JobAdded, JobReleased, Schedule
        from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
        from apscheduler.eventbrokers.local import LocalEventBroker
        from apscheduler.triggers.interval import IntervalTrigger
    except ImportError as exc:
        return f"not installed ({exc.name}); pip install --pre 'apscheduler>=4.0.0a1'"
    from sqlalchemy.ext.asyncio import create_async_engine

    database = await fresh_pg("apscheduler")
    url = database.url
    engine = create_async_engine(url, pool_size=10, max_overflow=10)
    added: list[float] = []
    released: list[float] = []
    store = SQLAlchemyDataStore(engine)
    try:
        async with AsyncScheduler(store, LocalEventBroker(), cleanup_interval=None) as scheduler:
            task = await scheduler.configure_task("noop", func=_noop)
            now = utcnow().replace(microsecond=0)
            first = now + LEAD
            # Bulk insert, marshalled exactly as ``add_schedule`` does it one at a time.
            rows = []
            for i, slot in enumerate(_slots(n, first, spread_ms)):
                schedule = Schedule(
                    id=f"burst-{i:06d}",
                    task_id=task.id,
                    trigger=IntervalTrigger(hours=1, start_time=slot),
                    job_executor=task.job_executor,
                    misfire_grace_time=task.misfire_grace_time,
                )
                schedule.next_fire_time = schedule.trigger.next()
                rows.append(store._convert_outgoing_fire_times(schedule.marshal(store.serializer)))
            async with engine.begin() as conn:
                for start in range(0, len(rows), 5_000):
                    await conn.execute(store._t_schedules.insert(), rows[start : start + 5_000])
            scheduler.subscribe(lambda e: added.append(time.time()), {JobAdded})
            scheduler.subscribe(lambda e: released.append(time.time()), {JobReleased})
            await scheduler.start_in_background()
            deadline = time.monotonic() + (first - utcnow()).total_seconds() + wait
            while time.monotonic() < deadline:
                if len(added) >= n and (not wait_finished or len(released) >= n):
                    break
                await asyncio.sleep(0.05)
            await scheduler.stop()
        base = first.timestamp()
        return {
            "claimed": max(added) - base if len(added) >= n else None,
            "finished": max(released) - base if wait_finished and len(released) >= n else None,
            "runs": len(added),
            "succeeded": len(released),
            "waited": wait,
        }
    finally:
        await engine.dispose()
        await database.drop()


async def stock_taskiq(n: int, logs: Path) -> dict[str, float | int | None]:
    """The stock taskiq setup's burst: when its last no-op task ran, from the slot."""
    from bench.async_firing import _stock, stock_burst

    row = await _stock(logs, lambda source: stock_burst(source, n), schedulers=1)
    finished = row.figures.get("all finished", "-")
    return {
        "finished": float(finished.replace(",", "").split()[0]) / 1000 if finished != "-" else None,
        "runs": row.figures["runs"],
        "duplicates": row.figures["duplicates"],
    }


async def _noop() -> None:
    return None


def _ratio(theirs, ours_, waited) -> str:
    if not ours_:
        return "-"
    if not isinstance(theirs, (int, float)):
        # It had not finished when we stopped waiting: at least waited / ours, if that says anything.
        return f"> {waited / ours_:.1f}×" if waited > ours_ else "-"
    return f"{theirs / ours_:.1f}×"


async def main(size: str) -> Table:
    sizes = SIZES[size]
    table = Table(
        "Bursts: schedules due at once (PostgreSQL)",
        [
            "burst",
            "scheduler",
            "runs",
            "all claimed+queued",
            "all finished",
            "lag p50",
            "lag p99",
            "target",
            "vs APScheduler",
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, n, spread_ms, wait_finished, targets in (
            (f"{sizes['instant']:,} at one instant", sizes["instant"], 0, True, (1.0, 2.5)),
            (f"{sizes['second']:,} in one second", sizes["second"], 1000, False, (10.0, None)),
        ):
            log(f"bursts: ours, {label}")
            mine = await ours(n, spread_ms, wait_finished=wait_finished, wait=sizes["wait"], logs=Path(tmp))
            log(f"bursts: APScheduler 4, {label}")
            theirs = await apscheduler(n, spread_ms, wait_finished=wait_finished, wait=sizes["rival_wait"])
            claim_target, finish_target = targets
            target = f"claimed < {claim_target:g} s" + (f", finished < {finish_target:g} s" if finish_target else "")
            met = [verdict(mine["claimed"] or float("inf"), claim_target)]
            if finish_target:
                met.append(verdict(mine["finished"] or float("inf"), finish_target))
            table.add(
                label,
                "mercato (local)",
                f"{mine['succeeded']:,} ok / {mine['runs']:,}",
                secs(mine["claimed"]) if mine["claimed"] is not None else "not within the wait",
                secs(mine["finished"])
                if mine["finished"] is not None
                else ("-" if not wait_finished else "not within the wait"),
                # Lag only where every run was waited for (otherwise few have started).
                ms(mine["lag_p50"]) if wait_finished else "",
                ms(mine["lag_p99"]) if wait_finished else "",
                f"{target}: {', '.join(met)}",
                "",
            )
            if wait_finished:
                log(f"bursts: stock taskiq, {label}")
                stock = await stock_taskiq(n, Path(tmp))
                table.add(
                    label,
                    "stock taskiq (2 workers)",
                    f"{stock['runs']}, {stock['duplicates']} twice",
                    "",
                    secs(stock["finished"]) if stock["finished"] is not None else "not within 180 s",
                    "",
                    "",
                    "at least 2× stock (finished)",
                    f"ours {_ratio(stock['finished'], mine['finished'], 180.0)} as fast" if stock["finished"] else "",
                )
            if isinstance(theirs, str):
                table.add(label, "APScheduler 4", theirs, "", "", "", "", "", "")
                continue
            unfinished = f"> {theirs['waited']:g} s ({{:,}} of {n:,})"
            table.add(
                label,
                "APScheduler 4 (SQLAlchemy store)",
                f"{theirs['succeeded']:,} done / {theirs['runs']:,}",
                secs(theirs["claimed"]) if theirs["claimed"] is not None else unfinished.format(theirs["runs"]),
                secs(theirs["finished"])
                if theirs["finished"] is not None
                else ("-" if not wait_finished else unfinished.format(theirs["succeeded"])),
                "",
                "",
                "",
                "claimed "
                + _ratio(theirs["claimed"], mine["claimed"], theirs["waited"])
                + (
                    ", finished " + _ratio(theirs["finished"], mine["finished"], theirs["waited"])
                    if wait_finished
                    else ""
                )
                + " as long",
            )
    table.notes.append(
        "Times from the slot (for 'one second': from its start). Ours: a separate `mercato scheduler "
        "start` process, watched every 50 ms. APScheduler: in-process, no run history kept."
    )
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    print(asyncio.run(main(parser.parse_args().size)).render())
