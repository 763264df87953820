"""Upserts by id: module registrations (``register``, ``register_many``) and imports share one
planner. Every item is validated and planned against the stored row of its id (locked, in id
order), every error is gathered (``[index].field``), then the plan is written in one
transaction: new schedules and their audit entries as plain rows, a statement for all of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.actors import Actor
from app.domain.clock import Clock
from app.domain.errors import ValidationError
from app.domain.hooks import SchedulerHooks
from app.domain.ownership import check_actor_scope, check_id_free, check_registration_holds, missing_scopes
from app.domain.registry import TargetRegistry
from app.domain.schedules import audit_snapshot
from app.domain.validation import DEFAULTS, FIELDS, clean_job
from app.domain.writes import ScheduleWriter, audit_row
from app.persistence.models import AuditEntry, ScheduledJob
from app.settings import Settings

#: Items planned between two yields to the event loop.
YIELD_EVERY = 100
#: Fields a module registration may not overwrite on an existing schedule: ops own them.
OPS_OWNED = ("is_enabled",)
# Declarative types ``__table__`` as any FromClause; a mapped class's is its Table. New
# schedules are inserted into the tables as plain rows, not through the ORM.
_JOBS = cast(sa.Table, ScheduledJob.__table__)
_AUDIT = cast(sa.Table, AuditEntry.__table__)

#: What an upsert by id is: a module's registration or an import.
REGISTER, IMPORT = "register", "import"


@dataclass(frozen=True)
class Step:
    """One item of an upsert by id, planned: its index in the batch (None: a single call),
    what it does, the stored row it meets, and its validated definition."""

    index: int | None
    job_id: str
    action: str  # "create" | "update" | "unchanged"
    job: ScheduledJob | None
    clean: dict[str, Any]


def indexed(index: int, exc: ValidationError) -> dict[str, str]:
    return {f"[{index}].{field}": message for field, message in exc.errors.items()}


def before_values(job: ScheduledJob) -> dict[str, Any]:
    return {field: getattr(job, field) for field in FIELDS}


def duplicate_id(exc: IntegrityError) -> bool:
    """The insert met a schedule with the same id (PostgreSQL's primary key, or SQLite's)."""
    text = str(exc.orig)
    return "pk_scheduled_jobs" in text or "scheduled_jobs.id" in text


class Upserts:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: TargetRegistry,
        settings: Settings,
        writer: ScheduleWriter,
        hooks: SchedulerHooks,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.settings = settings
        self.writer = writer
        self.hooks = hooks
        self.clock = clock

    async def run(
        self,
        items: list[tuple[str, dict[str, Any]]],
        actor: Actor,
        source: str,
        *,
        dry_run: bool = False,
        errors: dict[str, str] | None = None,
    ) -> list[tuple[str, str]]:
        """The one planner of the upserts by id (registrations and imports): every item is
        planned against the stored row of its id (locked, in id order), all errors are
        gathered (``[index].field``), then the plan is written in one transaction."""
        errors = dict(errors or {})
        seen: set[str] = set()
        for index, (job_id, _) in enumerate(items):
            if job_id and job_id in seen:
                errors[f"[{index}].id"] = f"'{job_id}' appears more than once"
            seen.add(job_id)
        ids = sorted(seen - {""})
        for attempt in (1, 2):
            try:
                async with self.sessions.begin() as session:
                    stored = {job.id: job for job in await session.scalars(self.lock_by_ids(ids))} if ids else {}
                    plan: list[Step] = []
                    for index, (job_id, data) in enumerate(items):
                        if index and index % YIELD_EVERY == 0:
                            # Validating thousands of definitions is CPU work: let the event
                            # loop answer other requests (health checks, pages) in between.
                            await asyncio.sleep(0)
                        if f"[{index}].id" in errors:
                            continue
                        try:
                            plan.append(self.plan_step(job_id, data, stored.get(job_id), actor, source, index))
                        except ValidationError as exc:
                            errors.update(indexed(index, exc))
                    errors.update(
                        await missing_scopes(session, [(s.index, s.clean) for s in plan if s.action == "create"])
                    )
                    if errors:
                        raise ValidationError(errors)
                    if not dry_run:
                        await self.write_plan(session, plan, actor)
                break
            except IntegrityError as exc:
                # Another process inserted one of these ids a moment ago (every process of a
                # module registers its schedules at start): planned again, it is an update.
                if attempt == 2 or not duplicate_id(exc):
                    raise
        changed = [step.job_id for step in plan if step.action != "unchanged"]
        if changed and not dry_run:
            await self.hooks.schedules_changed(changed)
        return [(step.job_id, step.action) for step in plan]

    def plan_step(
        self, job_id: str, data: dict[str, Any], job: ScheduledJob | None, actor: Actor, source: str, index: int = 0
    ) -> Step:
        """What an upsert of ``data`` does to the stored row ``job`` (None: no row has the id)."""
        if job is not None and job.deleted_at is None and source == REGISTER:
            # A registration is the module's whole say; fields it leaves out and the ops-owned
            # ones keep their stored values.
            current = before_values(job)
            given = {field: value for field, value in data.items() if field not in OPS_OWNED}
            clean = clean_job(given, base=current, registry=self.registry, settings=self.settings)
        else:
            clean = clean_job(data, base=dict(DEFAULTS), registry=self.registry, settings=self.settings)
            check_actor_scope(actor, clean)
        if source == REGISTER:
            check_registration_holds(job_id, job, clean)
        elif job is not None:
            check_id_free(job_id, job, clean, actor, updating=job.deleted_at is None)
        if job is None or job.deleted_at is not None:
            return Step(index, job_id, "create", job, clean)
        return Step(index, job_id, "unchanged" if clean == before_values(job) else "update", job, clean)

    async def write_plan(self, session: AsyncSession, plan: list[Step], actor: Actor) -> None:
        """Write the planned steps (in id order, like every batch that locks schedules): new
        schedules and their audit entries as plain rows, a statement for all of them."""
        new_rows: list[dict[str, Any]] = []
        for step in sorted(plan, key=lambda step: step.job_id):
            if step.action == "create" and step.job is None:
                new_rows.append(self.writer.new_row(step.job_id, step.clean, actor, existing=None))
            elif step.action == "create":
                await self.writer.insert(session, step.job_id, step.clean, actor, existing=step.job)
            elif step.action == "update":
                job = step.job
                assert job is not None  # an update is planned only for a stored schedule
                before = audit_snapshot(job)
                await self.writer.apply(session, job, step.clean, actor, expected_version=None)
                self.writer.audit(session, job, "update", actor, before, audit_snapshot(job))
        if new_rows:
            now = self.clock()
            await session.execute(sa.insert(_JOBS), new_rows)
            await session.execute(
                sa.insert(_AUDIT),
                [
                    audit_row(row, "create", actor, None, audit_snapshot(SimpleNamespace(**row)), now)
                    for row in new_rows
                ],
            )

    def lock_by_ids(self, ids: list[str]) -> sa.Select[tuple[ScheduledJob]]:
        """Schedules by id, locked in id order (so concurrent batches cannot deadlock)."""
        query = sa.select(ScheduledJob).order_by(ScheduledJob.id).with_for_update(of=ScheduledJob)
        if self.settings.is_sqlite:
            return query.where(ScheduledJob.id.in_(ids))
        # Joined to the ids as a VALUES list, not "id IN (...)": while a bulk registration grows
        # the table its statistics lag, PostgreSQL then scans it, and a thousand bound values
        # are compared one by one with every row (measured: over a second per batch).
        wanted = sa.values(sa.column("id", sa.String), name="wanted").data([(job_id,) for job_id in ids])
        return query.join(wanted, ScheduledJob.id == wanted.c.id)
