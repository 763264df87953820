"""Manual runs from the command line, in either strategy."""

from __future__ import annotations

import asyncio
import getpass
from dataclasses import dataclass
from typing import Any

from app.domain.actors import ALL_FEATURES, Actor
from app.domain.errors import NotFound
from app.domain.outcomes import LeaseKeeper, execute_run
from app.domain.services import Services
from app.domain.starting import start_run
from app.domain.vocabulary import ACTIVE, RunStatus
from app.persistence.models import ScheduledJobRun


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


async def run_manually(
    runtime: Services, job_id: str, *, wait: bool = True, payload: dict[str, Any] | None = None
) -> ManualOutcome:
    """Queue a manual run (with ``payload`` as its input, if given); in the local strategy with
    ``wait``, run it here and report the outcome."""
    run = await runtime.scheduler.trigger(job_id, cli_actor(), payload)
    if not wait or runtime.settings.queue_strategy == "async":
        return ManualOutcome(run.id, RunStatus.QUEUED, f"queued run {run.id} of {job_id}")
    if await start_run(runtime.execution, run.id, worker="cli"):
        # Its lease is renewed and a cancel request (`mercato scheduler cancel`, the UI) reaches it.
        keeper = LeaseKeeper(runtime.execution, lambda: [run.id])
        keeper.start()
        try:
            outcome = await execute_run(runtime.execution, run.id)
        finally:
            await keeper.stop()
        status, error = outcome.status, outcome.error or outcome.reason
    else:
        # A running poller took the run first: report its outcome all the same.
        status, error = await _wait_for_outcome(runtime, run.id)
    detail = f": {error}" if error else ""
    return ManualOutcome(run.id, status, f"run {run.id} of {job_id} {status.replace('_', ' ')}{detail}")


async def _wait_for_outcome(runtime: Services, run_id: str, every: float = 0.2) -> tuple[str, str | None]:
    while True:
        async with runtime.sessions() as session:
            run = await session.get(ScheduledJobRun, run_id)
        if run is None:
            raise NotFound(f"run {run_id} is gone")
        if run.status not in ACTIVE:
            return run.status, run.error_message or run.reason
        await asyncio.sleep(every)
