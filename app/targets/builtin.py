"""Targets that ship with the scheduler."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.domain.history import CLEANUP_COMMAND, delete_expired_runs
from app.domain.registry import TargetContext, registry
from app.domain.trash import purge_deleted_schedules


@registry.command(
    "demo.echo",
    label="Echo",
    description=(
        "Returns its payload. Optional 'sleep' (seconds) and 'fail' (error text) help try out timeouts and failures."
    ),
    payload_hint={"message": "hello", "sleep": 0, "fail": None},
    schedulable=True,
)
async def echo(payload: dict[str, Any], ctx: TargetContext) -> dict[str, Any]:
    ctx.log.info("echo %r (attempt %d)", payload.get("message"), ctx.attempt)
    delay = payload.get("sleep") or 0
    if isinstance(delay, (int, float)) and delay > 0:
        await _sleep_telling(ctx, min(float(delay), 3600))
    if payload.get("fail"):
        ctx.log.error("failing as the payload asks: %s", payload["fail"])
        raise RuntimeError(str(payload["fail"]))
    return {"echo": payload, "job": ctx.job_id, "slot": ctx.slot.isoformat(), "attempt": ctx.attempt}


async def _sleep_telling(ctx: TargetContext, seconds: float) -> None:
    """Sleep, with a log line every second, so that someone following the run sees it work."""
    ctx.log.info("sleeping %g s", seconds)
    slept = 0.0
    while slept < seconds:
        step = min(1.0, seconds - slept)
        await asyncio.sleep(step)
        slept += step
        ctx.log.info("slept %g of %g s", slept, seconds)


@registry.command(
    "reports.sales-summary",
    label="Sales summary report",
    description="Builds a sales summary for the scope's organization (demo data, no I/O).",
    payload_hint={"period": "day", "currency": "EUR"},
    schedulable=True,
)
async def sales_summary(payload: dict[str, Any], ctx: TargetContext) -> dict[str, Any]:
    period = str(payload.get("period", "day"))
    if period not in ("day", "week", "month"):
        raise ValueError(f"period must be day, week or month, not {period!r}")
    orders = sum(ord(c) for c in (ctx.organization_id or "all")) % 97 + 3
    ctx.log.info("%d orders in the %s for %s", orders, period, ctx.organization_id or "every organization")
    return {
        "period": period,
        "currency": payload.get("currency", "EUR"),
        "orders": orders,
        "organization": ctx.organization_id,
    }


# Fixed demo rates: the worker does no network I/O.
_RATES = {"USD": Decimal("1.08"), "GBP": Decimal("0.85"), "PLN": Decimal("4.31"), "JPY": Decimal("162.4")}


@registry.queue(
    "currency-rates",
    label="Fetch currency rates",
    description="Refreshes exchange rates for the organization (demo provider, no network).",
    payload_hint={"base": "EUR", "symbols": ["USD", "GBP"]},
    schedulable=True,
)
async def fetch_currency_rates(payload: dict[str, Any], ctx: TargetContext) -> dict[str, Any]:
    symbols = payload.get("symbols") or list(_RATES)
    unknown = [s for s in symbols if s not in _RATES]
    if unknown:
        ctx.log.warning("no rate for %s; known: %s", ", ".join(map(str, unknown)), ", ".join(_RATES))
        raise ValueError(f"unknown currency symbols: {', '.join(map(str, unknown))}")
    ctx.log.info("rates against %s: %s", payload.get("base", "EUR"), ", ".join(f"{s} {_RATES[s]}" for s in symbols))
    return {
        "base": payload.get("base", "EUR"),
        "rates": {s: str(_RATES[s]) for s in symbols},
        "fetched_at": datetime.now(UTC).isoformat(),
        "idempotency_key": ctx.idempotency_key,
    }


@registry.command(
    CLEANUP_COMMAND,
    label="Clean up run history",
    description=(
        "Deletes run history older than the retention period, and schedules deleted longer ago than "
        "the trash retention with their runs and audit entries, in small batches."
    ),
    payload_hint={"days": 7},
    schedulable=True,
    # It deletes the runs of every tenant: a system schedule's work, never a tenant's.
    scopes={"system"},
)
async def cleanup_history(payload: dict[str, Any], ctx: TargetContext) -> dict[str, Any]:
    if ctx.data is None:
        raise RuntimeError("the history cleanup needs the stored data, which the execution path gives it")
    days = payload.get("days")
    kept = days if isinstance(days, int) and days > 0 else ctx.data.settings.scheduler_history_retention_days
    deleted = await delete_expired_runs(ctx.data, days=kept)
    ctx.log.info("deleted %d runs (and their log lines) older than %d days", deleted, kept)
    purged = await purge_deleted_schedules(ctx.data)
    if purged.schedules:
        ctx.log.info("purged %d schedules deleted longer ago than the trash retention", purged.schedules)
    return {"deleted": deleted, "purgedSchedules": purged.schedules}
