"""Starting runs and running their targets (see ``app.domain.execution``).

One statement takes runs from ``queued`` to ``running`` (``starting``): for the local poller's
takes of due runs (``take_runnable``), a worker's deliveries and the CLI's run (``start_runs``,
``start_run``). Started runs are prepared in batches with their schedule and its tenant's
features (plain rows, not ORM objects: a burst of runs is CPU-bound), then ``run_target`` calls
each target and says how it ended (``TargetResult``), before anything is recorded.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import events
from app.domain.execution import LEASE, RunExecution
from app.domain.registry import Target, TargetContext
from app.domain.run_logs import RunLog
from app.domain.schedules import ScopedRow
from app.domain.stacks import shown_stack
from app.domain.vocabulary import RunStatus, Trigger
from app.persistence.bulk import Unnest
from app.persistence.database import retry_transient
from app.persistence.models import ScheduledJob, ScheduledJobRun, Tenant
from app.persistence.types import UTCDateTime

MAX_STACK_CHARS = 20_000

# Declarative types ``__table__`` as any FromClause; a mapped class's is its Table.
_RUNS = cast(sa.Table, ScheduledJobRun.__table__)
_JOBS = cast(sa.Table, ScheduledJob.__table__)
#: What executing a run reads of it.
RUN_COLUMNS = [
    _RUNS.c[name]
    for name in (
        "id",
        "job_id",
        "status",
        "scheduled_for",
        "trigger",
        "triggered_by",
        "attempt",
        "not_before",
        "started_at",
        "payload",
    )
]
#: What executing a run reads of its schedule.
JOB_COLUMNS = [
    _JOBS.c[name]
    for name in (
        "id",
        "tenant_id",
        "organization_id",
        "scope_type",
        "is_enabled",
        "deleted_at",
        "require_feature",
        "target_type",
        "target_queue",
        "target_command",
        "target_payload",
        "timeout_seconds",
        "max_retries",
        "retry_backoff_seconds",
        "created_by",
    )
]


class RunFacts(Protocol):
    """What recording a run and its events read of it: a row of ``RUN_COLUMNS`` or a
    ``ScheduledJobRun``."""

    @property
    def id(self) -> str: ...
    @property
    def job_id(self) -> str: ...
    @property
    def scheduled_for(self) -> datetime: ...
    @property
    def trigger(self) -> str: ...
    @property
    def triggered_by(self) -> str | None: ...
    @property
    def attempt(self) -> int: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def payload(self) -> dict[str, Any] | None: ...


class JobFacts(ScopedRow, Protocol):
    """What recording a run and its events read of its schedule: a row of ``JOB_COLUMNS`` or a
    ``ScheduledJob``."""

    @property
    def max_retries(self) -> int: ...
    @property
    def retry_backoff_seconds(self) -> int: ...


@dataclass(frozen=True)
class StartedRun:
    """A started run and what its execution needs, read in one go.

    ``run`` is a run's row (``RUN_COLUMNS``) and ``job`` its schedule's (``JOB_COLUMNS``, and
    the tenant's ``tenant_features``): plain rows, not ORM objects, since a burst of runs is
    CPU-bound. ``skip_reason``: why the target must not run; ``target``: what to call.
    """

    run: sa.Row[Any]
    job: sa.Row[Any] | None
    skip_reason: str | None
    target: Target | None


@dataclass(frozen=True)
class TargetResult:
    """How a target's run ended (or why it did not run), before it is recorded."""

    status: RunStatus
    reason: str | None = None
    error: str | None = None
    stack: str | None = None
    result: Any = None
    #: Seconds the target ran (None: measured from the run's start).
    elapsed: float | None = None
    #: What the target logged that is not written yet: written with the outcome.
    log: RunLog | None = None


def starting(picked: sa.ColumnElement[bool], now: datetime, worker: str | None) -> sa.Update:
    """queued -> running for the runs ``picked`` selects, taken by ``worker`` at ``now``: the one
    statement that starts runs, in every strategy.

    A statement tried again after a lost connection whose first try did commit (the connection
    went during COMMIT) recognises those runs as ours, so none is left "running" with nobody on it.
    """
    ours = sa.and_(_RUNS.c.status == RunStatus.RUNNING, _RUNS.c.queue_job_id == worker, _RUNS.c.started_at == now)
    return (
        _RUNS.update()
        .where(picked, sa.or_(_RUNS.c.status == RunStatus.QUEUED, ours))
        .values(status=RunStatus.RUNNING, started_at=now, lease_expires_at=now + LEASE, queue_job_id=worker)
    )


async def take_runnable(
    session: AsyncSession, now: datetime, *, limit: int, on_sqlite: bool, worker: str
) -> list[sa.Row[Any]]:
    """Start up to ``limit`` queued runs whose time has come (the local poller), atomically;
    returns their rows, oldest first."""
    pick = (
        sa.select(_RUNS.c.id)
        .where(_RUNS.c.status == RunStatus.QUEUED, _RUNS.c.not_before <= now)
        # In the order of the in-flight index (status, not_before), so that taking stops after
        # ``limit`` rows: a tie-break on id would sort every queued run (a burst's ten thousand
        # share one instant) on each take.
        .order_by(_RUNS.c.not_before)
        .limit(limit)
    )
    if on_sqlite:
        # One writer at a time: nobody can take these between the pick and the update.
        stmt = starting(_RUNS.c.id.in_(pick.scalar_subquery()), now, worker)
    else:
        # Locked in a materialized CTE, evaluated once: inside ``UPDATE ... WHERE id IN
        # (subquery)`` PostgreSQL may re-run a LIMIT ... SKIP LOCKED subquery and take more.
        picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        stmt = starting(_RUNS.c.id == picked.c.id, now, worker)
    taken = (await session.execute(stmt.returning(*RUN_COLUMNS))).all()
    return sorted(taken, key=lambda run: (run.not_before, run.id))


async def start_run(execution: RunExecution, run_id: str, *, worker: str | None = None) -> bool:
    """queued -> running, atomically. False if someone else started (or finished) it."""
    now = execution.clock()

    async def start() -> bool:
        async with execution.sessions.begin() as session:
            # An UPDATE returns a CursorResult (with rowcount); the session's signature says Result.
            result = cast(sa.CursorResult[Any], await session.execute(starting(_RUNS.c.id == run_id, now, worker)))
            return result.rowcount == 1

    return await retry_transient(start)


async def start_runs(execution: RunExecution, run_ids: list[str], *, worker: str) -> list[StartedRun | None]:
    """``start_run`` for a batch (a worker's deliveries), each started run prepared for execution
    (``prepare_started``), in one transaction. ``None`` where a run was not started: someone
    else started or finished it, or the same run came twice in the batch."""
    now = execution.clock()

    async def start() -> list[StartedRun | None]:
        async with execution.sessions.begin() as session:
            runs = (
                await session.execute(starting(_RUNS.c.id.in_(set(run_ids)), now, worker).returning(*RUN_COLUMNS))
            ).all()
            prepared = {p.run.id: p for p in await prepare_started(execution, session, runs)}
        return [prepared.pop(run_id, None) for run_id in run_ids]

    return await retry_transient(start)


async def prepare_runs(execution: RunExecution, session: AsyncSession, run_ids: list[str]) -> list[StartedRun]:
    """Read started runs, in the caller's transaction, and prepare them (``prepare_started``)."""
    runs = await session.execute(
        sa.select(*RUN_COLUMNS).where(_RUNS.c.id.in_(run_ids), _RUNS.c.status == RunStatus.RUNNING)
    )
    return await prepare_started(execution, session, runs.all())


async def prepare_started(
    execution: RunExecution, session: AsyncSession, runs: Sequence[sa.Row[Any]]
) -> list[StartedRun]:
    """Started runs with their schedule and its tenant's features (read in one go, in the
    caller's transaction); the schedules whose target will really run are marked as running
    (one statement)."""
    if not runs:
        return []
    rows = await session.execute(
        sa.select(*JOB_COLUMNS, Tenant.features.label("tenant_features"))
        .outerjoin(Tenant, Tenant.id == _JOBS.c.tenant_id)
        .where(_JOBS.c.id.in_({run.job_id for run in runs}))
    )
    jobs = {job.id: job for job in rows}
    prepared = []
    running: list[tuple[str, datetime, str]] = []
    for run in runs:
        job = jobs.get(run.job_id)
        reason = _skip_reason(run, job)
        target = None if job is None or reason else _target(execution, job)
        prepared.append(StartedRun(run, job, reason, target))
        if job is not None and target is not None:
            running.append((job.id, run.started_at, RunStatus.RUNNING))
    if running:
        await set_last(session, running)
    return prepared


async def run_target(execution: RunExecution, prepared: StartedRun) -> TargetResult:
    """Call the target (or decide it must not run). Never raises for a target's failure.

    The target runs in the caller's task, registered in ``execution.running``: a cancel
    request cancels that task, and the run ends ``cancelled`` (a cancellation that nobody
    requested, the process stopping, goes on up).
    """
    run, job, target = prepared.run, prepared.job, prepared.target
    # A run without its schedule always has a skip reason ("the schedule was deleted").
    if prepared.skip_reason or job is None:
        return TargetResult(RunStatus.SKIPPED, reason=prepared.skip_reason)
    if target is None:
        name = job.target_queue or job.target_command
        declared = execution.registry.get(job.target_type, name)
        if declared is not None and declared.schedulable:
            # Made before the target declared its scopes, or the declaration changed since.
            allowed = " or ".join(sorted(declared.scopes))
            return TargetResult(
                RunStatus.FAILED,
                error=f"{job.target_type} '{name}' may only run for {allowed} schedules, "
                f"not for a {job.scope_type} schedule",
            )
        return TargetResult(
            RunStatus.FAILED, error=f"{job.target_type} '{name}' is not registered as schedulable in this process"
        )
    running = execution.running
    running.enter(run.id)
    started = time.monotonic()
    try:
        finish = await _call_target(execution, run, job, target)
    except asyncio.CancelledError:
        who = running.cancelled_by(run.id)
        if who is None:
            raise  # the process is stopping: not a cancel request
        # Cancelled on request: the task goes on to record the outcome.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        finish = TargetResult(RunStatus.CANCELLED, reason=f"cancelled by {who}", elapsed=time.monotonic() - started)
    finally:
        who = running.leave(run.id)
    if who is not None and finish.status != RunStatus.CANCELLED:
        # The target caught the CancelledError and carried on: still a cancelled run (never
        # retried), with what the target did meanwhile.
        reason = f"cancelled by {who}; the target did not stop at once and ended on its own"
        finish = replace(finish, status=RunStatus.CANCELLED, reason=reason)
    return finish


async def _call_target(execution: RunExecution, run: sa.Row[Any], job: sa.Row[Any], target: Target) -> TargetResult:
    if execution.events.wants(events.STARTED):
        await execution.events.emit(run_event(events.STARTED, run, job, RunStatus.RUNNING, execution.clock()))
    logger, run_log = execution.logs.open(run.id, job.tenant_id, job.organization_id)
    ctx = TargetContext(
        job_id=job.id,
        run_id=run.id,
        slot=run.scheduled_for,
        trigger=run.trigger,
        attempt=run.attempt,
        scope_type=job.scope_type,
        tenant_id=job.tenant_id,
        organization_id=job.organization_id,
        acting_user=run.triggered_by or job.created_by or "system",
        idempotency_key=f"{job.id}:{run.scheduled_for.isoformat()}:{run.attempt}"
        if run.trigger != Trigger.MANUAL
        else run.id,
        data=execution,
        log=logger,
    )
    # A manual run records the payload it runs with; a scheduled one (NULL) takes its schedule's.
    payload = run.payload if run.payload is not None else job.target_payload
    started = time.monotonic()
    try:
        call = target.handler(dict(payload or {}), ctx)
        result = await asyncio.wait_for(call, job.timeout_seconds) if job.timeout_seconds else await call
    except TimeoutError:
        return TargetResult(
            RunStatus.TIMED_OUT,
            error=f"timed out after {job.timeout_seconds}s",
            elapsed=time.monotonic() - started,
            log=run_log,
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return TargetResult(
            RunStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            stack=shown_stack(traceback.format_exc())[-MAX_STACK_CHARS:],
            elapsed=time.monotonic() - started,
            log=run_log,
        )
    finally:
        if run_log is not None:
            execution.logs.close(run_log)
    return TargetResult(RunStatus.SUCCEEDED, result=result, elapsed=time.monotonic() - started, log=run_log)


def _target(execution: RunExecution, job: sa.Row[Any]) -> Target | None:
    target = execution.registry.get(
        job.target_type, job.target_queue if job.target_type == "queue" else job.target_command
    )
    return target if target is not None and target.allows(job.scope_type) else None


def _skip_reason(run: sa.Row[Any], job: sa.Row[Any] | None) -> str | None:
    if job is None or job.deleted_at is not None:
        return "the schedule was deleted"
    if not job.is_enabled and run.trigger != Trigger.MANUAL:
        return "the schedule is disabled"
    # System schedules have no tenant, so no tenant feature can switch them off.
    if job.require_feature and job.scope_type != "system":
        if job.require_feature not in (job.tenant_features or []):
            return f"feature '{job.require_feature}' is not enabled for tenant '{job.tenant_id}'"
    return None


async def set_last(session: AsyncSession, runs: Iterable[tuple[str, datetime, str]]) -> None:
    """Schedules' last run and status from (schedule id, run started, status).

    Only the newest run speaks for a schedule's "last run". Sorted, so that concurrent batches
    lock the schedules in the same order and cannot deadlock.
    """
    newest: dict[str, tuple[datetime, str]] = {}
    for job_id, at, status in runs:
        if job_id not in newest or newest[job_id][0] <= at:
            newest[job_id] = (at, status)
    rows = [{"b_id": job_id, "b_started": at, "b_status": status} for job_id, (at, status) in sorted(newest.items())]
    await _SET_LAST_MANY.execute(session, rows)


#: ``set_last``: one statement for the batch, the schedules taken in id order.
_SET_LAST_MANY = Unnest(
    "UPDATE scheduled_jobs AS j SET last_run_at = v.b_started, last_status = v.b_status FROM ("
    "SELECT * FROM {rows} ORDER BY b_id) AS v "
    "WHERE j.id = v.b_id AND (j.last_run_at IS NULL OR j.last_run_at <= v.b_started)",
    {"b_id": sa.String, "b_started": UTCDateTime, "b_status": sa.String},
    alias="u",
)


def run_event(
    name: str,
    run: RunFacts,
    job: JobFacts,
    status: str,
    at: datetime,
    *,
    finished_at: datetime | None = None,
    duration_ms: int | None = None,
    reason: str | None = None,
    error: str | None = None,
) -> events.RunEvent:
    return events.RunEvent(
        name=name,
        job_id=job.id,
        run_id=run.id,
        slot=run.scheduled_for,
        trigger=run.trigger,
        attempt=run.attempt,
        tenant_id=job.tenant_id,
        organization_id=job.organization_id,
        status=status,
        at=at,
        started_at=run.started_at,
        finished_at=finished_at,
        duration_ms=duration_ms,
        reason=reason,
        error=error,
    )
