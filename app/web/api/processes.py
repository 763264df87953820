"""Scheduler health: the processes that fire and run, and whether anything is firing."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from app.domain import health, heartbeats
from app.domain.actors import VIEW
from app.web.api.problems import errors
from app.web.api.schemas import Health, HealthProblem, Process, ProcessList
from app.web.auth import require, runtime_of


@get("/processes", summary="Scheduler processes", responses=errors(401, 403))
async def list_processes(request: Request[Any, Any, Any]) -> ProcessList:
    """Processes heard from in the last hour (live, stopped, lost). Superadmins also get each
    one's host, pid, version and runs in flight; ``runsInFlight`` counts your scope's running runs."""
    listing = await heartbeats.process_listing(runtime_of(request), require(request, VIEW))
    return ProcessList(
        [Process.of(view) for view in listing.processes],
        {kind.value: count for kind, count in listing.live.items()},
        listing.runs_in_flight,
    )


@get("/health", summary="Is anything firing?", responses=errors(401, 403))
async def scheduler_health(request: Request[Any, Any, Any]) -> Health:
    """What the health banner shows: processes missing for the configured strategy, and slots
    or queued runs of your scope waiting longer than ``SCHEDULER_OVERDUE_SECONDS``."""
    verdict = await health.assess(runtime_of(request), require(request, VIEW))
    return Health(
        verdict.healthy,
        verdict.strategy,
        {kind.value: count for kind, count in verdict.live.items()},
        [HealthProblem(p.code, p.message, p.command, p.hint, p.since) for p in verdict.problems],
    )


routes = [list_processes, scheduler_health]
