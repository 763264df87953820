"""Registering schedules through the service API, as modules do at start-up.

    python -m bench.registration --size small|full

N module schedules (one per organization, say ``orders:reminders:<org>``) registered through
``runtime.scheduler.register`` one after another, then the same N again unchanged (what every
restart of a module does), then, if the service has it, ``register_many`` for a fresh N and
again unchanged. Each registration is validated, audited and computes its next slot, exactly as
one made from the UI. PostgreSQL, in a database of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.support import Table, bench_runtime, fresh_pg, log, secs, verdict

SIZES = {"small": {"n": 1_000, "many": 20_000}, "full": {"n": 10_000, "many": 100_000}}
TARGET_SECONDS = 60.0
TARGET_N = 100_000
MODULES = ("orders", "billing", "catalog", "search")


def registration(i: int, prefix: str = "reg") -> dict:
    module = MODULES[i % len(MODULES)]
    return {
        "id": f"{module}:{prefix}-{i}",
        "name": f"{module} housekeeping {i}",
        "scope_type": "organization",
        "tenant_id": f"tenant-{i % 100:03d}",
        "organization_id": f"org-{i}",
        "schedule_type": "cron",
        "schedule_value": f"{i % 60} {i % 24} * * *",
        "timezone": "Europe/Warsaw",
        "target_type": "command",
        "target_command": "demo.echo",
        "target_payload": {"org": i},
        "source_module": module,
    }


def _row(table: Table, what: str, n: int, seconds: float) -> None:
    projected = seconds / n * TARGET_N
    target = f"{TARGET_N:,} < {TARGET_SECONDS:g} s"
    table.add(
        what,
        f"{n:,}",
        secs(seconds),
        f"{n / seconds:,.0f}/s",
        secs(projected),
        target,
        verdict(projected, TARGET_SECONDS),
    )


async def main(size: str) -> Table:
    sizes = SIZES[size]
    database = await fresh_pg("registration")
    url = database.url
    runtime = bench_runtime(url)
    table = Table(
        "Registering schedules through the service API (PostgreSQL)",
        ["how", "schedules", "took", "rate", f"for {TARGET_N:,}", "target", ""],
    )
    try:
        n = sizes["n"]
        for what in ("register, one by one (new)", "register, one by one (unchanged)"):
            log(f"registration: {what}, {n:,}")
            started = time.perf_counter()
            for i in range(n):
                await runtime.scheduler.register(registration(i))
            _row(table, what, n, time.perf_counter() - started)
        if hasattr(runtime.scheduler, "register_many"):
            many = sizes["many"]
            items = [registration(i, "batch") for i in range(many)]
            for what in ("register_many, batches of 1,000 (new)", "register_many, batches of 1,000 (unchanged)"):
                log(f"registration: {what}, {many:,}")
                started = time.perf_counter()
                for start in range(0, many, 1_000):
                    await runtime.scheduler.register_many(items[start : start + 1_000])
                _row(table, what, many, time.perf_counter() - started)
        else:
            table.notes.append("register_many: not in this version of the service.")
    finally:
        await runtime.close()
        await database.drop()
    table.notes.append(f"'for {TARGET_N:,}' projects the measured rate where fewer were registered.")
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    print(asyncio.run(main(parser.parse_args().size)).render())
