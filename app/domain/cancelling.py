"""Cancelling a run: a queued run never starts; a running run's target is stopped.

A queued run is cancelled by one conditional statement (``queued -> cancelled``). It races
safely with the statement that starts runs (``starting.starting``, ``queued -> running``):
both are conditional updates of the same row, so the database orders them; whichever comes
second finds the run no longer queued. The start then starts nothing, or the cancel becomes a
request to stop a running run.

A running run runs in some process (a local poller, a taskiq worker, the CLI), maybe not this
one. The request is recorded on the run (``cancel_requested_at``, ``cancelled_by``); every
process that executes runs looks for requests about its running targets once a second (one
query over their ids, in ``LeaseKeeper``) and cancels their tasks (``RunningTargets``): the
target's ``await`` raises ``CancelledError`` and the run is recorded ``cancelled``, never
retried. A run whose process died meanwhile is settled ``cancelled`` when its lease runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import events
from app.domain.errors import Conflict
from app.domain.execution import RunExecution
from app.domain.starting import JobFacts, run_event
from app.domain.vocabulary import RunStatus
from app.persistence.models import ScheduledJobRun

#: How often a process that executes runs looks for cancel requests of its running targets.
CANCEL_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class CancelOutcome:
    """The run after the request, and whether it was stopped at once (it was queued)."""

    run: ScheduledJobRun
    stopped: bool


async def request_cancel(session: AsyncSession, run: ScheduledJobRun, who: str, now: datetime) -> CancelOutcome:
    """Cancel ``run`` in the caller's transaction: a queued run at once, a running one by
    request (idempotent: asking twice keeps the first request). A finished run: ``Conflict``."""
    runs = cast(sa.Table, ScheduledJobRun.__table__)
    queued = await _update(
        session,
        sa.update(runs)
        .where(runs.c.id == run.id, runs.c.status == RunStatus.QUEUED)
        .values(
            status=RunStatus.CANCELLED,
            reason=f"cancelled by {who} before it started",
            finished_at=now,
            cancel_requested_at=now,
            cancelled_by=who,
        ),
    )
    if not queued:
        await _update(
            session,
            sa.update(runs)
            .where(runs.c.id == run.id, runs.c.status == RunStatus.RUNNING, runs.c.cancel_requested_at.is_(None))
            .values(cancel_requested_at=now, cancelled_by=who),
        )
    await session.refresh(run)
    if not queued and run.status != RunStatus.RUNNING:
        ended = run.status.replace("_", " ")
        raise Conflict(f"run {run.id} has already finished ({ended}); only a queued or running run can be cancelled")
    return CancelOutcome(run, stopped=queued)


async def _update(session: AsyncSession, statement: sa.Update) -> bool:
    # An UPDATE returns a CursorResult (with rowcount); the session's signature says Result.
    result = cast(sa.CursorResult[Any], await session.execute(statement))
    return result.rowcount == 1


async def announce_cancelled(bus: events.EventBus, run: ScheduledJobRun, job: JobFacts, now: datetime) -> None:
    """``scheduler.job.cancelled`` for a queued run cancelled here (a running run's comes from
    the process that stops it, with its outcome)."""
    if bus.wants(events.CANCELLED):
        at = run.finished_at or now
        await bus.emit(
            run_event(events.CANCELLED, run, job, RunStatus.CANCELLED, at, finished_at=at, reason=run.reason)
        )


async def cancel_requests(execution: RunExecution, run_ids: list[str]) -> dict[str, str]:
    """Of ``run_ids`` (running here), those someone asked to cancel: run id -> who asked."""
    if not run_ids:
        return {}
    async with execution.sessions() as session:
        rows = await session.execute(
            sa.select(ScheduledJobRun.id, ScheduledJobRun.cancelled_by).where(
                ScheduledJobRun.id.in_(run_ids),
                ScheduledJobRun.status == RunStatus.RUNNING,
                ScheduledJobRun.cancel_requested_at.is_not(None),
            )
        )
        return {run_id: who or "someone" for run_id, who in rows.tuples()}


async def cancel_requested_targets(execution: RunExecution) -> list[str]:
    """Cancel the targets running in this process whose runs someone asked to cancel."""
    requests = await cancel_requests(execution, execution.running.ids())
    return execution.running.cancel(requests)
