"""The execution path shared by both strategies: one run, from claimed to finished.

Runs are started (``queued -> running``) and prepared in batches: by the local poller
(``dispatch.take_runnable`` + ``prepare_started``) and by a taskiq worker for the messages that
arrive together (``start_runs``); each target then runs (``run_target``) and the outcomes of runs
that end together are written in one transaction (``record_finishes``). ``start_run`` +
``execute_run`` do the same for one run (``mercato scheduler run``). The run row follows the real life of the job: ``queued -> running -> succeeded | failed |
timed_out`` or ``skipped`` with a reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.domain.ids import new_id
from app.domain import events
from app.domain.registry import Target, TargetContext
from app.domain.stacks import shown_stack
from app.persistence.bulk import Unnest
from app.persistence.database import retry_transient
from app.persistence.models import ScheduledJob, ScheduledJobRun, Tenant
from app.persistence.types import UTCDateTime

log = logging.getLogger("mercato.execution")

#: A running run's lease; the executor renews it while the target runs.
LEASE = timedelta(seconds=60)
MAX_RESULT_BYTES = 64 * 1024
MAX_STACK_CHARS = 20_000


@dataclass(frozen=True)
class Outcome:
    run_id: str
    status: str
    error: str | None = None
    reason: str | None = None


def _starting(run_ids: set[str], now: datetime, worker: str | None):
    """queued -> running for these runs, taken by ``worker`` at ``now``.

    Tried again when the connection is lost. A first try that did commit (the connection went
    during COMMIT) is recognised as ours, so the run is not left "running" with nobody on it.
    """
    ours = sa.and_(_RUNS.c.status == "running", _RUNS.c.queue_job_id == worker, _RUNS.c.started_at == now)
    return (
        _RUNS.update()
        .where(_RUNS.c.id.in_(run_ids), sa.or_(_RUNS.c.status == "queued", ours))
        .values(status="running", started_at=now, lease_expires_at=now + LEASE, queue_job_id=worker)
    )


async def start_run(runtime, run_id: str, *, worker: str | None = None) -> bool:
    """queued -> running, atomically. False if someone else started (or finished) it."""
    now = runtime.clock()

    async def start() -> bool:
        async with runtime.sessions.begin() as session:
            result = await session.execute(_starting({run_id}, now, worker))
            return result.rowcount == 1

    return await retry_transient(start)


async def start_runs(runtime, run_ids: list[str], *, worker: str) -> list["Prepared | None"]:
    """``start_run`` for a batch (a worker's deliveries), each started run prepared for execution
    (``prepare_started``), in one transaction. ``None`` where a run was not started: someone
    else started or finished it, or the same run came twice in the batch."""
    now = runtime.clock()

    async def start() -> list[Prepared | None]:
        async with runtime.sessions.begin() as session:
            runs = (await session.execute(_starting(set(run_ids), now, worker).returning(*RUN_COLUMNS))).all()
            prepared = {p.run.id: p for p in await prepare_started(runtime, session, runs)}
        return [prepared.pop(run_id, None) for run_id in run_ids]

    return await retry_transient(start)


@dataclass(frozen=True)
class Prepared:
    """A started run and what its execution needs, read in one go.

    ``run`` is a run's row (``RUN_COLUMNS``) and ``job`` its schedule's (``JOB_COLUMNS``, and
    the tenant's ``tenant_features``): plain rows, not ORM objects, since a burst of runs is
    CPU-bound.
    """

    run: Any
    job: Any | None
    skip_reason: str | None
    target: Target | None


_RUNS = ScheduledJobRun.__table__
_JOBS = ScheduledJob.__table__
#: What executing a run reads of it.
RUN_COLUMNS = [_RUNS.c[name] for name in (
    "id", "job_id", "status", "scheduled_for", "trigger", "triggered_by", "attempt", "not_before", "started_at",
)]
#: What executing a run reads of its schedule.
JOB_COLUMNS = [_JOBS.c[name] for name in (
    "id", "tenant_id", "organization_id", "scope_type", "is_enabled", "deleted_at", "require_feature",
    "target_type", "target_queue", "target_command", "target_payload", "timeout_seconds", "max_retries",
    "retry_backoff_seconds", "created_by",
)]


async def prepare_runs(runtime, session, run_ids: list[str]) -> list[Prepared]:
    """Read started runs, in the caller's transaction, and prepare them (``prepare_started``)."""
    runs = await session.execute(
        sa.select(*RUN_COLUMNS).where(_RUNS.c.id.in_(run_ids), _RUNS.c.status == "running")
    )
    return await prepare_started(runtime, session, runs.all())


async def prepare_started(runtime, session, runs: list) -> list[Prepared]:
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
    for run in runs:
        job = jobs.get(run.job_id)
        reason = _skip_reason(run, job)
        prepared.append(Prepared(run, job, reason, None if reason else _target(runtime, job)))
    running = [(p.job.id, p.run.started_at, "running") for p in prepared if p.target is not None]
    if running:
        await _set_last(session, running)
    return prepared


async def execute_run(runtime, run_id: str) -> Outcome:
    """Run a started run's target and record its outcome. Never raises for a target's failure."""

    async def prepare() -> list[Prepared] | Outcome:
        async with runtime.sessions.begin() as session:
            prepared = await prepare_runs(runtime, session, [run_id])
            if not prepared:
                status = await session.scalar(sa.select(ScheduledJobRun.status).where(ScheduledJobRun.id == run_id))
                return Outcome(run_id, status or "missing")
            return prepared

    prepared = await retry_transient(prepare)
    if isinstance(prepared, Outcome):
        return prepared
    [run] = prepared
    finish = await run_target(runtime, run)
    [outcome] = await record_finishes(runtime, [(run.run, run.job, finish)])
    return outcome


@dataclass(frozen=True)
class Finish:
    """How a run ended, before it is recorded."""

    status: str
    reason: str | None = None
    error: str | None = None
    stack: str | None = None
    result: Any = None
    #: Seconds the target ran (None: measured from the run's start).
    elapsed: float | None = None


async def run_target(runtime, prepared: Prepared) -> Finish:
    """Call the target (or decide it must not run). Never raises for a target's failure."""
    run, job, target = prepared.run, prepared.job, prepared.target
    if prepared.skip_reason:
        return Finish("skipped", reason=prepared.skip_reason)
    if target is None:
        name = job.target_queue or job.target_command
        return Finish("failed", error=f"{job.target_type} '{name}' is not registered as schedulable in this process")
    if runtime.events.wants(events.STARTED):
        await runtime.events.emit(_event(events.STARTED, run, job, "running", runtime.clock()))
    ctx = TargetContext(
        job_id=job.id,
        run_id=run.id,
        slot=run.scheduled_for,
        trigger=run.trigger,
        attempt=run.attempt,
        tenant_id=job.tenant_id,
        organization_id=job.organization_id,
        acting_user=run.triggered_by or job.created_by or "system",
        idempotency_key=f"{job.id}:{run.scheduled_for.isoformat()}:{run.attempt}" if run.trigger != "manual" else run.id,
        runtime=runtime,
    )
    started = time.monotonic()
    try:
        call = target.handler(dict(job.target_payload or {}), ctx)
        result = await asyncio.wait_for(call, job.timeout_seconds) if job.timeout_seconds else await call
    except asyncio.TimeoutError:
        return Finish("timed_out", error=f"timed out after {job.timeout_seconds}s", elapsed=time.monotonic() - started)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return Finish("failed", error=f"{type(exc).__name__}: {exc}", stack=shown_stack(traceback.format_exc())[-MAX_STACK_CHARS:],
                      elapsed=time.monotonic() - started)
    return Finish("succeeded", result=result, elapsed=time.monotonic() - started)


def _target(runtime, job) -> Target | None:
    target = runtime.registry.get(job.target_type, job.target_queue if job.target_type == "queue" else job.target_command)
    return target if target is not None and target.schedulable else None


def _skip_reason(run, job) -> str | None:
    if job is None or job.deleted_at is not None:
        return "the schedule was deleted"
    if not job.is_enabled and run.trigger != "manual":
        return "the schedule is disabled"
    # System schedules have no tenant, so no tenant feature can switch them off.
    if job.require_feature and job.scope_type != "system":
        if job.require_feature not in (job.tenant_features or []):
            return f"feature '{job.require_feature}' is not enabled for tenant '{job.tenant_id}'"
    return None


async def record_finishes(runtime, finishes: list[tuple[Any, Any | None, Finish]]) -> list[Outcome]:
    """Record how runs ended, in one transaction; then their events. Retries are queued per policy.

    A run no longer ``running`` (its lease ran out and it was settled elsewhere) is not written
    twice: its outcome is ``lost``.
    """
    now = runtime.clock()
    # The target has run: a connection lost while writing that down must not turn its outcome
    # into "the process stopped" a lease later. The writes are conditional, so a replay is safe.
    outcomes, recorded, retry_ids = await retry_transient(lambda: _record(runtime, finishes, now))
    for run, job, finish, duration in recorded:
        name = {"succeeded": events.COMPLETED, "skipped": events.SKIPPED}.get(finish.status, events.FAILED)
        if job is not None and runtime.events.wants(name):
            await runtime.events.emit(_event(name, run, job, finish.status, now, finished_at=now, duration_ms=duration,
                                             reason=finish.reason, error=finish.error))
        log.info("run finished", extra={"run_id": run.id, "job_id": run.job_id, "status": finish.status,
                                         "slot": run.scheduled_for.isoformat(), "duration_ms": duration})
    if retry_ids:
        await runtime.hooks.runs_queued(retry_ids)
    return outcomes


async def _record(runtime, finishes, now: datetime):
    outcomes, recorded, last, retry_ids = [], [], [], []
    rows = []
    for run, job, finish in finishes:
        elapsed = finish.elapsed if finish.elapsed is not None else (now - (run.started_at or now)).total_seconds()
        rows.append({
            "b_id": run.id, "b_status": finish.status, "b_reason": finish.reason, "b_duration": max(0, int(elapsed * 1000)),
            "b_error": finish.error[:10_000] if finish.error else None, "b_stack": finish.stack,
            "b_result": _json_text(finish.result),
        })
    async with runtime.sessions.begin() as session:
        finished = set((await _FINISH_MANY.execute(session, rows, now=now)).scalars())
        for (run, job, finish), row in zip(finishes, rows):
            if run.id not in finished:
                outcomes.append(Outcome(run.id, "lost"))
                continue
            outcomes.append(Outcome(run.id, finish.status, finish.error, finish.reason))
            recorded.append((run, job, finish, row["b_duration"]))
            if job is None:
                continue
            last.append((job.id, run.started_at or now, finish.status))
            if finish.status in ("failed", "timed_out") and run.attempt <= job.max_retries:
                retry = _retry(job, run, finish.status, now)
                session.add(retry)
                retry_ids.append(retry.id)
        if last:
            await _set_last(session, last)
    return outcomes, recorded, retry_ids


#: Runs' outcomes, in one statement for the batch, each written only while the run is still
#: running (one settled as lost is not written twice); the runs really written are returned.
_FINISH_MANY = Unnest(
    "UPDATE scheduled_job_runs AS r SET status = v.b_status, reason = v.b_reason, finished_at = :now, "
    "duration_ms = v.b_duration, error_message = v.b_error, error_stack = v.b_stack, result = v.b_result, "
    "lease_expires_at = NULL "
    "FROM {rows} WHERE r.id = v.b_id AND r.status = 'running' RETURNING id",
    {"b_id": sa.String, "b_status": sa.String, "b_reason": sa.String, "b_duration": sa.Integer,
     "b_error": sa.Text, "b_stack": sa.Text, "b_result": sa.JSON},
    sa.bindparam("now", type_=UTCDateTime()),
)


def _retry(job, run, status: str, now: datetime) -> ScheduledJobRun:
    """The next attempt of a failed run, after an exponential backoff."""
    backoff = timedelta(seconds=job.retry_backoff_seconds * 2 ** (run.attempt - 1))
    return ScheduledJobRun(
        id=new_id(), job_id=job.id, tenant_id=job.tenant_id, organization_id=job.organization_id,
        scheduled_for=run.scheduled_for, trigger="retry", triggered_by=run.triggered_by,
        status="queued", attempt=run.attempt + 1, not_before=now + backoff, enqueued_at=now,
        reason=f"retry {run.attempt} of {job.max_retries} after {status.replace('_', ' ')}",
        created_at=now,
    )


async def _set_last(session, runs: list[tuple[str, datetime, str]]) -> None:
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


#: ``_set_last``: one statement for the batch, the schedules taken in id order.
_SET_LAST_MANY = Unnest(
    "UPDATE scheduled_jobs AS j SET last_run_at = v.b_started, last_status = v.b_status FROM ("
    "SELECT * FROM {rows} ORDER BY b_id) AS v "
    "WHERE j.id = v.b_id AND (j.last_run_at IS NULL OR j.last_run_at <= v.b_started)",
    {"b_id": sa.String, "b_started": UTCDateTime, "b_status": sa.String},
    alias="u",
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


def _event(name, run, job, status, at, *, finished_at=None, duration_ms=None, reason=None, error=None) -> events.RunEvent:
    return events.RunEvent(
        name=name, job_id=job.id, run_id=run.id, slot=run.scheduled_for, trigger=run.trigger, attempt=run.attempt,
        tenant_id=job.tenant_id, organization_id=job.organization_id, status=status, at=at,
        started_at=run.started_at, finished_at=finished_at, duration_ms=duration_ms, reason=reason, error=error,
    )


async def announce_skipped(runtime, run_ids: list[str]) -> None:
    """``scheduler.job.skipped`` for runs skipped as their slot was claimed (overlap: skip).

    The claim commits first; the events follow, as for every other outcome.
    """
    if not run_ids:
        return
    async with runtime.sessions() as session:
        runs = list(await session.scalars(sa.select(ScheduledJobRun).where(ScheduledJobRun.id.in_(run_ids))))
        jobs = {j.id: j for j in await session.scalars(sa.select(ScheduledJob).where(ScheduledJob.id.in_({r.job_id for r in runs})))}
    for run in sorted(runs, key=lambda r: (r.scheduled_for, r.id)):
        job = jobs.get(run.job_id)
        if job is not None:
            await runtime.events.emit(
                _event(events.SKIPPED, run, job, "skipped", run.finished_at, finished_at=run.finished_at, reason=run.reason)
            )


async def settle_lost_runs(runtime) -> list[str]:
    """Runs whose lease expired lost their process: mark them failed and retry per policy."""
    now = runtime.clock()
    async with runtime.sessions() as session:
        lost = list(
            await session.scalars(
                sa.select(ScheduledJobRun).where(
                    ScheduledJobRun.status == "running", ScheduledJobRun.lease_expires_at < now
                ).limit(500)
            )
        )
        if not lost:
            return []
        jobs = {j.id: j for j in await session.scalars(sa.select(ScheduledJob).where(ScheduledJob.id.in_({r.job_id for r in lost})))}
    error = "the process running this job stopped (killed or crashed) before it finished"
    outcomes = await record_finishes(runtime, [(run, jobs.get(run.job_id), Finish("failed", error=error)) for run in lost])
    return [o.run_id for o in outcomes if o.status != "lost"]


async def renew_leases(runtime, run_ids: list[str]) -> None:
    if not run_ids:
        return
    async with runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJobRun)
            .where(ScheduledJobRun.id.in_(run_ids), ScheduledJobRun.status == "running")
            .values(lease_expires_at=runtime.clock() + LEASE)
            .execution_options(synchronize_session=False)
        )
