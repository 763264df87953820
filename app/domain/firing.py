"""Claiming due slots: the heart of exactly-once.

One transaction takes a batch of due schedules, decides what each due slot becomes (a run, a
catch-up run, a missed or skipped record), inserts those run rows and advances ``next_run_at``
from the slot, not from now, in three statements whatever the batch's size: the read, one
``UPDATE`` advancing the batch, one ``INSERT`` of its runs (``app.persistence.bulk``). On
PostgreSQL the batch is locked with ``FOR UPDATE SKIP LOCKED`` so concurrent pollers take
disjoint batches; on SQLite (one writer at a time) the read takes no lock, and the ``UPDATE``
advances a schedule only if ``next_run_at`` is still the slot it read: one that someone else
moved first is skipped, its runs not inserted. The unique (schedule, slot) index backs both: a
duplicate insert is a no-op.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app import engine
from app.domain.ids import new_id
from app.domain.schedules import CountedSchedule, ScopedRow, to_schedule
from app.domain.vocabulary import ACTIVE, RunStatus, Trigger
from app.persistence.bulk import Unnest
from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.persistence.types import UTCDateTime

log = logging.getLogger("mercato.firing")

#: A slot at most this late is on time; older ones follow the catch-up policy.
MISFIRE_GRACE = timedelta(seconds=60)
#: Missed slots are recorded one row each up to this many per claim; the rest in one summary row.
MAX_MISSED_ROWS = 100
#: At most this many catch-up runs for one schedule in one claim (policy ``all``).
MAX_CATCH_UP_RUNS = 1000
#: What claiming reads of a schedule (not its payload, texts or audit fields: a burst is CPU-bound).
CLAIM_COLUMNS = (
    ScheduledJob.id,
    ScheduledJob.tenant_id,
    ScheduledJob.organization_id,
    ScheduledJob.schedule_type,
    ScheduledJob.schedule_value,
    ScheduledJob.timezone,
    ScheduledJob.anchor_at,
    ScheduledJob.start_at,
    ScheduledJob.end_at,
    ScheduledJob.next_run_at,
    ScheduledJob.catch_up_policy,
    ScheduledJob.catch_up_window_seconds,
    ScheduledJob.overlap_policy,
    ScheduledJob.jitter_seconds,
    ScheduledJob.max_runs,
    ScheduledJob.run_count,
)


class ClaimedSchedule(CountedSchedule, ScopedRow, Protocol):
    """What claiming reads of a schedule (``CLAIM_COLUMNS``): a plain row or a ``ScheduledJob``."""

    @property
    def next_run_at(self) -> datetime | None: ...
    @property
    def catch_up_policy(self) -> str: ...
    @property
    def catch_up_window_seconds(self) -> int: ...
    @property
    def overlap_policy(self) -> str: ...
    @property
    def jitter_seconds(self) -> int: ...


@dataclass
class SlotPlan:
    fire: list[tuple[datetime, Trigger]] = field(default_factory=list)  # (slot, trigger)
    missed: list[datetime] = field(default_factory=list)
    missed_overflow: int = 0
    next_run_at: datetime | None = None
    #: The schedule could not be evaluated (a stored value the engine no longer reads).
    error: str | None = None


@dataclass
class ClaimResult:
    queued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missed: int = 0
    jobs: int = 0
    #: The batch was full: more may be due right now.
    full: bool = False
    #: (schedule id, run id, slot, status) of every run row written.
    slots: list[tuple[str, str, datetime, str]] = field(default_factory=list)

    def log(self) -> None:
        """One log line per claimed slot; call it after the claim committed, so logs never lie."""
        for job_id, run_id, slot, status in self.slots:
            log.info(
                "slot %s",
                status,
                extra={"job_id": job_id, "run_id": run_id, "slot": slot.isoformat(), "status": status},
            )


def plan_slots(job: ClaimedSchedule, now: datetime, grace: timedelta) -> SlotPlan:
    """What happens to each slot from ``job.next_run_at`` up to ``now``.

    A slot at most ``grace`` old is on time and fires. Older slots were missed while nothing ran
    (downtime): the catch-up policy decides which of them still run.
    """
    schedule = to_schedule(job)
    first = job.next_run_at
    assert first is not None
    following = schedule.next_after(first)
    if now - first <= grace and (following is None or following > now):
        # The usual claim: one slot due, on time, the next one still ahead (and so the first
        # after now). One pass over the schedule instead of two: claiming a burst is CPU-bound.
        return SlotPlan(fire=[(first, Trigger.SCHEDULED)], next_run_at=following)
    cap = MAX_CATCH_UP_RUNS + MAX_MISSED_ROWS
    due = [first, *schedule.slots_between(first, now, limit=cap)]
    unlisted = 0
    if len(due) > cap:
        # A very long outage of a frequent schedule: list the oldest slots (recorded missed) and
        # the newest ones (which may still run), not every slot in between.
        newest = _newest_slots(schedule, due[-1], now, MAX_CATCH_UP_RUNS)
        after_listed = schedule.next_after(due[-1])
        if newest and after_listed is not None and after_listed < newest[0]:
            unlisted = 1
        due = sorted({*due, *newest})
    plan = SlotPlan(next_run_at=schedule.next_after(now))
    on_time = [s for s in due if now - s <= grace]
    late = [s for s in due if now - s > grace]
    policy = job.catch_up_policy
    catch_up: list[datetime] = []
    if policy == "latest" and late and not on_time:
        catch_up = [late[-1]]
    elif policy == "all":
        window = timedelta(seconds=job.catch_up_window_seconds)
        catch_up = [s for s in late if now - s <= window][-MAX_CATCH_UP_RUNS:]
    plan.fire = [(s, Trigger.CATCH_UP) for s in catch_up] + [(s, Trigger.SCHEDULED) for s in on_time]
    fired = set(catch_up)
    missed = [s for s in late if s not in fired]
    plan.missed = missed[:MAX_MISSED_ROWS]
    plan.missed_overflow = len(missed) - len(plan.missed) + unlisted
    return plan


def _newest_slots(schedule: engine.Schedule, after: datetime, now: datetime, count: int) -> list[datetime]:
    """Up to ``count`` of the newest slots in (after, now]: widen a window back from ``now``."""
    width = timedelta(minutes=1)
    while True:
        start = max(after, now - width)
        slots = schedule.slots_between(start, now, limit=count * 16)
        if len(slots) >= count or start == after:
            return slots[-count:]
        width *= 4


async def claim_due_slots(
    session: AsyncSession,
    now: datetime,
    *,
    limit: int,
    grace: timedelta,
    on_sqlite: bool,
    job_ids: Collection[str] | None = None,
) -> ClaimResult:
    """Claim up to ``limit`` due schedules in the caller's transaction (only ``job_ids`` if given)."""
    query = (
        # Plain rows, not ORM entities (a burst is CPU-bound); they read like schedules.
        sa.select(*CLAIM_COLUMNS)
        .where(ScheduledJob.is_enabled, ScheduledJob.deleted_at.is_(None), ScheduledJob.next_run_at <= now)
        .order_by(ScheduledJob.next_run_at)
        .limit(limit)
    )
    if job_ids is not None:
        # The async strategy claims exactly the schedules its Redis source says are due.
        query = query.where(ScheduledJob.id.in_(list(job_ids)))
    if not on_sqlite:
        query = query.with_for_update(skip_locked=True)
    jobs = list((await session.execute(query)).all())
    result = ClaimResult(jobs=0, full=len(jobs) >= limit)
    if not jobs:
        return result
    busy = await _busy_jobs(session, [j.id for j in jobs if j.overlap_policy == "skip"])
    planned: list[tuple[str, list[dict[str, Any]]]] = []
    advances: list[dict[str, Any]] = []
    for job in jobs:
        plan = _plan_or_stop(job, now, grace)
        runs, fired, status = _runs_for(job, plan, now, busy=job.id in busy)
        next_run_at = plan.next_run_at
        if job.max_runs is not None and job.run_count + fired >= job.max_runs:
            next_run_at = None
        advances.append(
            {
                "b_id": job.id,
                "b_seen": job.next_run_at,
                "b_next": next_run_at,
                "b_fired": fired,
                "b_status": status if fired == 0 else None,
            }
        )
        planned.append((job.id, runs))
    # One statement advances the batch; its row locks (PostgreSQL), or SQLite's one write lock,
    # are held for as short a time as possible (workers recording runs wait for them). Each row
    # only if its slot is still the one planned from: on SQLite the read above took no lock, and
    # a schedule another poller claimed (or someone changed) meanwhile is left alone.
    advanced = set((await _ADVANCE.execute(session, advances)).scalars())
    rows: list[dict[str, Any]] = []
    for job_id, runs in planned:
        if job_id not in advanced:
            continue
        result.jobs += 1
        rows.extend(runs)
        result.queued.extend(r["id"] for r in runs if r["status"] == RunStatus.QUEUED)
        result.skipped.extend(r["id"] for r in runs if r["status"] == RunStatus.SKIPPED)
        result.missed += sum(1 for r in runs if r["status"] == RunStatus.MISSED)
        result.slots.extend((r["job_id"], r["id"], r["scheduled_for"], r["status"]) for r in runs)
    if rows:
        await _INSERT_RUNS.execute(session, rows)
    session.expunge_all()
    return result


#: Advance claimed schedules: next slot, runs fired, the status to show if none ran; only those
#: still at the slot the claim planned from (returned).
_ADVANCE = Unnest(
    "UPDATE scheduled_jobs AS j SET next_run_at = v.b_next, run_count = j.run_count + v.b_fired, "
    "last_status = coalesce(v.b_status, j.last_status) "
    "FROM {rows} WHERE j.id = v.b_id AND j.next_run_at = v.b_seen RETURNING id",
    {"b_id": sa.String, "b_seen": UTCDateTime, "b_next": UTCDateTime, "b_fired": sa.Integer, "b_status": sa.String},
)
#: The claimed slots' run rows. A slot that already has its run (the unique slot index) is left
#: alone. (``WHERE true``: SQLite would read ``ON CONFLICT`` after a bare ``FROM`` as a join's.)
_RUN_COLUMNS = {
    "id": sa.String,
    "job_id": sa.String,
    "tenant_id": sa.String,
    "organization_id": sa.String,
    "scheduled_for": UTCDateTime,
    "trigger": sa.String,
    "triggered_by": sa.String,
    "status": sa.String,
    "reason": sa.String,
    "error_message": sa.Text,
    "attempt": sa.Integer,
    "not_before": UTCDateTime,
    "enqueued_at": UTCDateTime,
    "finished_at": UTCDateTime,
    "created_at": UTCDateTime,
}
_INSERT_RUNS = Unnest(
    f"INSERT INTO scheduled_job_runs ({', '.join(_RUN_COLUMNS)}) SELECT * FROM {{rows}} WHERE true "
    "ON CONFLICT (job_id, scheduled_for) WHERE trigger IN ('scheduled', 'catch_up') DO NOTHING",
    _RUN_COLUMNS,
)


async def _busy_jobs(session: AsyncSession, job_ids: list[str]) -> set[str]:
    if not job_ids:
        return set()
    rows = await session.scalars(
        sa.select(ScheduledJobRun.job_id)
        .where(ScheduledJobRun.job_id.in_(job_ids), ScheduledJobRun.status.in_(ACTIVE))
        .distinct()
    )
    return set(rows)


def _plan_or_stop(job: ClaimedSchedule, now: datetime, grace: timedelta) -> SlotPlan:
    """The plan; or, for a schedule that cannot be evaluated, a stop (no next slot) and a reason.

    One unreadable row must not fail the whole batch, or no schedule would fire at all.
    """
    try:
        return plan_slots(job, now, grace)
    except Exception as exc:
        log.exception("cannot evaluate schedule; stopping it", extra={"job_id": job.id})
        return SlotPlan(next_run_at=None, error=f"the schedule cannot be evaluated: {exc}; fix and save it to resume")


def _runs_for(
    job: ClaimedSchedule, plan: SlotPlan, now: datetime, *, busy: bool
) -> tuple[list[dict[str, Any]], int, str | None]:
    """Run rows for a plan: (rows, how many will really run, status to show when none will)."""
    if plan.error:
        return (
            [_row(job, job.next_run_at, Trigger.SCHEDULED, RunStatus.FAILED, now, error=plan.error)],
            0,
            RunStatus.FAILED,
        )
    rows: list[dict[str, Any]] = []
    fired = 0
    status = None
    remaining = None if job.max_runs is None else max(0, job.max_runs - job.run_count)
    for slot in plan.missed:
        rows.append(_row(job, slot, Trigger.SCHEDULED, RunStatus.MISSED, now, reason=_missed_reason(job)))
        status = RunStatus.MISSED
    if plan.missed_overflow:
        rows.append(
            _row(
                job,
                plan.missed[-1] + timedelta(microseconds=1) if plan.missed else now,
                Trigger.SCHEDULED,
                RunStatus.MISSED,
                now,
                reason=f"{plan.missed_overflow}+ more slots missed while the scheduler was not running",
            )
        )
    for slot, trigger in plan.fire:
        if remaining is not None and fired >= remaining:
            break
        if busy or (job.overlap_policy == "skip" and fired > 0):
            rows.append(
                _row(
                    job,
                    slot,
                    trigger,
                    RunStatus.SKIPPED,
                    now,
                    reason="previous run is still queued or running (overlap: skip)",
                )
            )
            status = RunStatus.SKIPPED
            continue
        jitter = random.randint(0, job.jitter_seconds) if job.jitter_seconds else 0
        rows.append(_row(job, slot, trigger, RunStatus.QUEUED, now, not_before=slot + timedelta(seconds=jitter)))
        fired += 1
    return rows, fired, status


def _missed_reason(job: ClaimedSchedule) -> str:
    return f"missed while the scheduler was not running (catch-up: {job.catch_up_policy})"


def _row(
    job: ClaimedSchedule,
    slot: datetime | None,
    trigger: Trigger,
    status: RunStatus,
    now: datetime,
    *,
    reason: str | None = None,
    not_before: datetime | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    finished = status in (RunStatus.MISSED, RunStatus.SKIPPED, RunStatus.FAILED)
    return {
        "id": new_id(),
        "job_id": job.id,
        "tenant_id": job.tenant_id,
        "organization_id": job.organization_id,
        "scheduled_for": slot,
        "trigger": trigger,
        "triggered_by": None,
        "status": status,
        "reason": reason,
        "error_message": error,
        "attempt": 1,
        "not_before": not_before,
        "enqueued_at": None if finished else now,
        "finished_at": now if finished else None,
        "created_at": now,
    }
