"""Manual runs from the command line, in either strategy."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from app.domain.actors import ALL_FEATURES, Actor
from app.domain.execution import execute_run, start_run
from app.runtime import Runtime


@dataclass(frozen=True)
class ManualOutcome:
    run_id: str
    status: str
    message: str


def cli_actor() -> Actor:
    try:
        who = getpass.getuser()
    except Exception:  # no login name in some containers
        who = "unknown"
    return Actor(id=None, label=f"cli:{who}", features=ALL_FEATURES, is_superadmin=True)


async def run_manually(runtime: Runtime, job_id: str, *, wait: bool = True) -> ManualOutcome:
    """Queue a manual run; in the local strategy with ``wait``, run it here and report the outcome."""
    run = await runtime.scheduler.trigger(job_id, cli_actor())
    if not wait or runtime.settings.queue_strategy == "async":
        return ManualOutcome(run.id, "queued", f"queued run {run.id} of {job_id}")
    if not await start_run(runtime, run.id, worker="cli"):
        return ManualOutcome(run.id, "queued", f"queued run {run.id} of {job_id} (a running scheduler took it)")
    outcome = await execute_run(runtime, run.id)
    detail = f": {outcome.error}" if outcome.error else ""
    return ManualOutcome(run.id, outcome.status, f"run {run.id} of {job_id} {outcome.status.replace('_', ' ')}{detail}")
