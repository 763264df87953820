"""Recording how runs ended, retries and leases (see ``app.domain.execution``).

The outcomes of runs that end together are written in one transaction (``record_outcomes``):
each run's status, error and result (only while it is still running), its schedule's last run,
and a retry per policy; events follow the commit. A running run holds a lease that the process
running it renews (``LeaseKeeper``, which also passes cancel requests on to the targets running
in its process); a run whose lease ran out lost its process and is settled as failed, or as
cancelled if someone had asked for that (``settle_lost_runs``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.domain import events
from app.domain.cancelling import CANCEL_CHECK_SECONDS, cancel_requested_targets
from app.domain.execution import LEASE, RunExecution
from app.domain.ids import new_id
from app.domain.run_logs import final_rows, write_lines
from app.domain.starting import JobFacts, RunFacts, TargetResult, prepare_runs, run_event, run_target, set_last
from app.domain.vocabulary import FAILURES, RunStatus, Trigger
from app.persistence.bulk import Unnest
from app.persistence.database import retry_transient
from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.persistence.types import UTCDateTime

log = logging.getLogger("mercato.execution")

MAX_RESULT_BYTES = 64 * 1024
#: The outcome of a run that was settled elsewhere before its own outcome was written.
LOST = "lost"


@dataclass(frozen=True)
class RecordedOutcome:
    """What was recorded of a run: its status, or ``lost`` when it was settled elsewhere first."""

    run_id: str
    status: str
    error: str | None = None
    reason: str | None = None


async def execute_run(execution: RunExecution, run_id: str) -> RecordedOutcome:
    """Run a started run's target and record its outcome. Never raises for a target's failure."""

    async def prepare() -> list[Any] | RecordedOutcome:
        async with execution.sessions.begin() as session:
            prepared = await prepare_runs(execution, session, [run_id])
            if not prepared:
                status = await session.scalar(sa.select(ScheduledJobRun.status).where(ScheduledJobRun.id == run_id))
                return RecordedOutcome(run_id, status or "missing")
            return prepared

    prepared = await retry_transient(prepare)
    if isinstance(prepared, RecordedOutcome):
        return prepared
    [run] = prepared
    finish = await run_target(execution, run)
    [outcome] = await record_outcomes(execution, [(run.run, run.job, finish)])
    return outcome


#: A run that ended, its schedule (None: deleted since) and how it ended.
EndedRun = tuple[RunFacts, JobFacts | None, TargetResult]


async def record_outcomes(execution: RunExecution, finishes: Sequence[EndedRun]) -> list[RecordedOutcome]:
    """Record how runs ended, in one transaction; then their events. Retries are queued per policy.

    A run no longer ``running`` (its lease ran out and it was settled elsewhere) is not written
    twice: its outcome is ``lost``.
    """
    now = execution.clock()
    # The lines the flusher took are committed before the outcome says the run has finished
    # (``RunLogs.lock``): a follower that sees the run finished has every line.
    async with execution.logs.lock:
        lines = final_rows(finish.log for _run, _job, finish in finishes)
        # The target has run: a connection lost while writing that down must not turn its outcome
        # into "the process stopped" a lease later. The writes are conditional, so a replay is safe.
        outcomes, recorded, retry_ids = await retry_transient(lambda: _record(execution, finishes, now, lines))
    for run, job, finish, duration in recorded:
        name = _EVENT_OF.get(finish.status, events.FAILED)
        if job is not None and execution.events.wants(name):
            await execution.events.emit(
                run_event(
                    name,
                    run,
                    job,
                    finish.status,
                    now,
                    finished_at=now,
                    duration_ms=duration,
                    reason=finish.reason,
                    error=finish.error,
                )
            )
        log.info(
            "run finished",
            extra={
                "run_id": run.id,
                "job_id": run.job_id,
                "status": finish.status,
                "slot": run.scheduled_for.isoformat(),
                "duration_ms": duration,
            },
        )
    if retry_ids:
        await execution.hooks.runs_queued(retry_ids)
    return outcomes


#: The event a recorded outcome emits (any other ending: ``failed``).
_EVENT_OF = {
    RunStatus.SUCCEEDED: events.COMPLETED,
    RunStatus.SKIPPED: events.SKIPPED,
    RunStatus.CANCELLED: events.CANCELLED,
}


async def _record(
    execution: RunExecution, finishes: Sequence[EndedRun], now: datetime, lines: list[tuple[Any, ...]]
) -> tuple[list[RecordedOutcome], list[tuple[RunFacts, JobFacts | None, TargetResult, int]], list[str]]:
    outcomes: list[RecordedOutcome] = []
    recorded: list[tuple[RunFacts, JobFacts | None, TargetResult, int]] = []
    last: list[tuple[str, datetime, str]] = []
    retry_ids: list[str] = []
    rows: list[dict[str, Any]] = []
    for run, _job, finish in finishes:
        elapsed = finish.elapsed if finish.elapsed is not None else (now - (run.started_at or now)).total_seconds()
        rows.append(
            {
                "b_id": run.id,
                "b_status": finish.status,
                "b_reason": finish.reason,
                "b_duration": max(0, int(elapsed * 1000)),
                "b_error": finish.error[:10_000] if finish.error else None,
                "b_stack": finish.stack,
                "b_result": _json_text(finish.result),
            }
        )
    async with execution.sessions.begin() as session:
        await write_lines(session, lines)
        finished = set((await _FINISH_MANY.execute(session, rows, now=now)).scalars())
        for (run, job, finish), row in zip(finishes, rows):
            if run.id not in finished:
                outcomes.append(RecordedOutcome(run.id, LOST))
                continue
            outcomes.append(RecordedOutcome(run.id, finish.status, finish.error, finish.reason))
            recorded.append((run, job, finish, row["b_duration"]))
            if job is None:
                continue
            last.append((job.id, run.started_at or now, finish.status))
            if finish.status in FAILURES and run.attempt <= job.max_retries:
                retry = _retry(job, run, finish.status, now)
                session.add(retry)
                retry_ids.append(retry.id)
        if last:
            await set_last(session, last)
    return outcomes, recorded, retry_ids


#: Runs' outcomes, in one statement for the batch, each written only while the run is still
#: running (one settled as lost is not written twice); the runs really written are returned.
_FINISH_MANY = Unnest(
    "UPDATE scheduled_job_runs AS r SET status = v.b_status, reason = v.b_reason, finished_at = :now, "
    "duration_ms = v.b_duration, error_message = v.b_error, error_stack = v.b_stack, result = v.b_result, "
    "lease_expires_at = NULL "
    "FROM {rows} WHERE r.id = v.b_id AND r.status = 'running' RETURNING id",
    {
        "b_id": sa.String,
        "b_status": sa.String,
        "b_reason": sa.String,
        "b_duration": sa.Integer,
        "b_error": sa.Text,
        "b_stack": sa.Text,
        "b_result": sa.JSON,
    },
    sa.bindparam("now", type_=UTCDateTime()),
)


def _retry(job: JobFacts, run: RunFacts, status: str, now: datetime) -> ScheduledJobRun:
    """The next attempt of a failed run, after an exponential backoff."""
    backoff = timedelta(seconds=job.retry_backoff_seconds * 2 ** (run.attempt - 1))
    return ScheduledJobRun(
        id=new_id(),
        job_id=job.id,
        tenant_id=job.tenant_id,
        organization_id=job.organization_id,
        scheduled_for=run.scheduled_for,
        trigger=Trigger.RETRY,
        triggered_by=run.triggered_by,
        status=RunStatus.QUEUED,
        attempt=run.attempt + 1,
        not_before=now + backoff,
        enqueued_at=now,
        reason=f"retry {run.attempt} of {job.max_retries} after {status.replace('_', ' ')}",
        created_at=now,
        # A manual run's retry gets the input the run got.
        payload=run.payload,
    )


def _json_text(value: Any) -> str | None:
    """A target's result as JSON text for the run row: ``None`` stays NULL, anything JSON cannot
    hold is stored as its ``repr``, and a result over 64 KiB as a preview."""
    if value is None:
        return None
    try:
        text = json.dumps(value, default=str, allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    if len(text) > MAX_RESULT_BYTES:
        return json.dumps({"truncated": True, "preview": text[:1000]})
    return text


async def announce_skipped(execution: RunExecution, run_ids: list[str]) -> None:
    """``scheduler.job.skipped`` for runs skipped as their slot was claimed (overlap: skip).

    The claim commits first; the events follow, as for every other outcome.
    """
    if not run_ids:
        return
    async with execution.sessions() as session:
        runs = list(await session.scalars(sa.select(ScheduledJobRun).where(ScheduledJobRun.id.in_(run_ids))))
        jobs = {
            j.id: j
            for j in await session.scalars(sa.select(ScheduledJob).where(ScheduledJob.id.in_({r.job_id for r in runs})))
        }
    for run in sorted(runs, key=lambda r: (r.scheduled_for, r.id)):
        job = jobs.get(run.job_id)
        # The claim that skipped a run wrote its finished_at; the clock only satisfies the type.
        at = run.finished_at or execution.clock()
        if job is not None:
            await execution.events.emit(
                run_event(
                    events.SKIPPED,
                    run,
                    job,
                    RunStatus.SKIPPED,
                    at,
                    finished_at=run.finished_at,
                    reason=run.reason,
                )
            )


async def settle_lost_runs(execution: RunExecution) -> list[str]:
    """Runs whose lease expired lost their process: mark them failed and retry per policy."""
    now = execution.clock()
    async with execution.sessions() as session:
        lost = list(
            await session.scalars(
                sa.select(ScheduledJobRun)
                .where(ScheduledJobRun.status == RunStatus.RUNNING, ScheduledJobRun.lease_expires_at < now)
                .limit(500)
            )
        )
        if not lost:
            return []
        jobs = {
            j.id: j
            for j in await session.scalars(sa.select(ScheduledJob).where(ScheduledJob.id.in_({r.job_id for r in lost})))
        }
    error = "the process running this job stopped (killed or crashed) before it finished"

    def ending(run: ScheduledJobRun) -> TargetResult:
        if run.cancel_requested_at is not None:  # asked to stop, and stopped: not a failure
            reason = f"cancelled by {run.cancelled_by}; {error}"
            return TargetResult(RunStatus.CANCELLED, reason=reason)
        return TargetResult(RunStatus.FAILED, error=error)

    outcomes = await record_outcomes(execution, [(run, jobs.get(run.job_id), ending(run)) for run in lost])
    return [o.run_id for o in outcomes if o.status != LOST]


async def renew_leases(execution: RunExecution, run_ids: list[str]) -> None:
    if not run_ids:
        return
    async with execution.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJobRun)
            .where(ScheduledJobRun.id.in_(run_ids), ScheduledJobRun.status == RunStatus.RUNNING)
            .values(lease_expires_at=execution.clock() + LEASE)
            .execution_options(synchronize_session=False)
        )


class LeaseKeeper:
    """The one loop that looks after the runs in flight in a process (the local poller, a taskiq
    worker and the CLI's run each run one): once a second it passes cancel requests on to the
    targets running here (one query, only while some run), and every third of a lease it renews
    the leases of the runs in flight."""

    def __init__(self, execution: RunExecution, in_flight: Callable[[], Iterable[str]]) -> None:
        self.execution = execution
        self.in_flight = in_flight
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _keep(self) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(CANCEL_CHECK_SECONDS)
            try:
                await cancel_requested_targets(self.execution)
            except Exception:
                log.exception("looking for cancel requests failed")
            if time.monotonic() - renewed < LEASE.total_seconds() / 3:
                continue
            renewed = time.monotonic()
            try:
                await renew_leases(self.execution, list(self.in_flight()))
            except Exception:
                log.exception("renewing leases failed")
