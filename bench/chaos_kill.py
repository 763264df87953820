"""Scheduler processes SIGKILLed every few seconds while 500 schedules fire every second.

    python -m bench.chaos_kill                       # 500 schedules, 60 s, both strategies
    python -m bench.chaos_kill --size small          # 200 schedules, 20 s (make bench)
    python -m bench.chaos_kill --only local --schedules 300 --seconds 30 --every 2

Each strategy gets a PostgreSQL database of the run's own (``mercato_bench_chaos_<pid>_<hex>``,
dropped after it) and, for the async one, Redis DB 13 (``BENCH_CHAOS_REDIS_URL``), flushed.
Local: three ``mercato scheduler start``. Async: two ``mercato worker scheduler`` and one
``mercato worker start --workers 2``. Every ``--every`` seconds the next scheduler process is
SIGKILLed and a new one started in its place; the schedules (``* * * * * *``, the chaos target
writing one ledger line per execution) keep firing. Then the survivors drain the backlog and
every slot is accounted for (``tests.support.chaos``).

Columns: *fired twice* = slots with two run rows or two executions (must be 0); *not
accounted* = slots with no run, or a run never finished, or a success that never ran (must be
0); *killed mid-run* = runs their process was killed under (settled failed once, per policy; how
many had already run their target); lags are slot to run row (claim) and slot to start; *drain*
= from the end of the chaos until the last slot's run finished.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.support import fresh_pg
from tests.support.chaos import Chaos, run_chaos

SIZES = {"small": (200, 20), "full": (500, 60)}
REDIS = os.environ.get("BENCH_CHAOS_REDIS_URL", "redis://127.0.0.1:6379/13")
COLUMNS = [
    "strategy",
    "schedules",
    "seconds",
    "slots",
    "kills",
    "fired twice",
    "not accounted",
    "killed mid-run",
    "claim lag p50/p99",
    "start lag p50/p99",
    "drain",
    "verdict",
]


def row(strategy: str, account, drain: float) -> list[str]:
    s = account.summary()
    lag = lambda d: f"{d.get('p50', '-')}/{d.get('p99', '-')} ms" if d else "-"
    verdict = "ok" if account.ok() and not account.errors[:1] else "FAILED"
    return [
        strategy,
        f"{s['schedules']}",
        f"{s['seconds']}",
        f"{s['slots']:,}",
        f"{s['kills']}",
        f"{s['fired_twice']}",
        f"{s['not_accounted']}",
        f"{s['interrupted']} ({s['interrupted_ran']} had run)",
        lag(s["claim_lag_ms"]),
        lag(s["start_lag_ms"]),
        f"{drain:.0f} s",
        verdict,
    ]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--only", choices=["local", "async"], default=None)
    parser.add_argument("--schedules", type=int, default=None)
    parser.add_argument("--seconds", type=int, default=None)
    parser.add_argument("--every", type=float, default=3.0, help="Seconds between kills.")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    args = parser.parse_args()
    schedules, seconds = SIZES[args.size]
    schedules, seconds = args.schedules or schedules, args.seconds or seconds
    strategies = [args.only] if args.only else ["local", "async"]
    print(
        f"# chaos_kill: {schedules} schedules every second, {seconds} s, a scheduler SIGKILLed every "
        f"{args.every:g} s; {time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} cores, "
        f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    rows, failed = [], False
    for strategy in strategies:
        database = await fresh_pg("chaos")
        chaos = Chaos(
            strategy,
            schedules=schedules,
            seconds=seconds,
            every=args.every,
            actions=("kill",),
            schedulers=3 if strategy == "local" else 2,
            drain_timeout=args.drain_timeout,
        )
        logs = Path(tempfile.mkdtemp(prefix=f"chaos-{strategy}-"))
        try:
            account = await run_chaos(chaos, database.url, logs, redis_url=REDIS if strategy == "async" else None)
        finally:
            await database.drop()
        rows.append(row(strategy, account, account.drain_seconds))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
        if not account.ok() or account.errors:
            failed = True
            print(f"  details: {account.summary()}\n  logs: {logs}", flush=True)
    print()
    print(table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
