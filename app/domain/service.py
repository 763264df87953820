"""SchedulerService: the one place where schedules change.

The UI, the JSON API, the CLI, imports and modules all call these functions. Every change is
validated the same way, writes an audit entry, and tells the running strategy (hooks).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.actors import MANAGE, SYSTEM, TRIGGER, VIEW, Actor
from app.domain.cancelling import CancelOutcome, announce_cancelled, request_cancel
from app.domain.clock import Clock, utcnow
from app.domain.errors import Conflict, Forbidden, NotFound, ValidationError
from app.domain.events import EventBus
from app.domain.hooks import NoHooks, SchedulerHooks
from app.domain.ids import new_id
from app.domain.listing import (
    COUNT_CAP,
    JobQuery,
    Page,
    RunQuery,
    list_statement,
    matches_statement,
    owned_visible_to,
    runs_statement,
    source_modules_statement,
    visible_to,
)
from app.domain.ownership import check_actor_scope, check_id_free, id_not_available, missing_scopes
from app.domain.registry import TargetRegistry
from app.domain.schedules import PAUSE_FIELDS, audit_snapshot
from app.domain.trash import TrashQuery, trash_statements
from app.domain.upserts import IMPORT, REGISTER, Upserts, before_values, duplicate_id, indexed
from app.domain.validation import DEFAULTS, clean_job, clean_payload, validate_job_id
from app.domain.vocabulary import RunStatus, Trigger
from app.domain.writes import ScheduleWriter, conflict_message
from app.persistence.models import AuditEntry, ScheduledJob, ScheduledJobRun
from app.settings import Settings


@dataclass(frozen=True)
class JobSnapshot:
    """What a schedule's page shows, from one read (``SchedulerService.snapshot``)."""

    job: ScheduledJob
    #: The newest runs, newest first (the chart, and the overview's last run).
    recent: builtins.list[ScheduledJobRun]
    history: Page

    @property
    def last_run(self) -> ScheduledJobRun | None:
        """The newest run that has started or ended, from the same read as the history."""
        return next((run for run in self.recent if run.status != RunStatus.QUEUED), None)


class SchedulerService:
    # After the ``list`` method below, ``list`` in this class's signatures means that method:
    # they name the type as ``builtins.list``.

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: TargetRegistry,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        hooks: SchedulerHooks | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.hooks: SchedulerHooks = hooks or NoHooks()
        #: Where the events of runs cancelled before they started go.
        self.events = events or EventBus()
        self.writer = ScheduleWriter(clock)
        self.upserts = Upserts(sessions, registry, settings, self.writer, self.hooks, clock)

    # ----- reading -------------------------------------------------------------------------

    async def get(self, job_id: str, actor: Actor = SYSTEM, *, include_deleted: bool = False) -> ScheduledJob:
        async with self.sessions() as session:
            return await self._load_visible(session, job_id, actor, VIEW, include_deleted=include_deleted)

    async def exists(self, job_id: str) -> bool:
        async with self.sessions() as session:
            found = await session.scalar(
                sa.select(ScheduledJob.id).where(ScheduledJob.id == job_id, ScheduledJob.deleted_at.is_(None))
            )
            return found is not None

    async def find_by_module(self, module: str) -> list[ScheduledJob]:
        async with self.sessions() as session:
            rows = await session.scalars(
                sa.select(ScheduledJob)
                .where(ScheduledJob.source_module == module, ScheduledJob.deleted_at.is_(None))
                .order_by(ScheduledJob.id)
            )
            return list(rows)

    async def list(self, query: JobQuery | None = None, actor: Actor = SYSTEM) -> Page:
        query = query or JobQuery()
        self._require(actor, VIEW)
        async with self.sessions() as session:
            if query.search and not self.settings.is_sqlite and len(query.search.strip()) >= 3:
                # The trigram indexes find the matches; PostgreSQL's estimate of a scan that
                # stops after the first 10,001 prices lower() and LIKE on every row far too
                # low (measured at a million schedules: 200-400 ms against 80 ms).
                await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
            found = (await session.execute(matches_statement(query, actor))).all()
            total = found[0].total
            if total <= COUNT_CAP:
                items = [row.ScheduledJob for row in found if row.ScheduledJob is not None]
            else:  # more matches than the cap: a walk of the sort index finds a page fast
                items = list(await session.scalars(list_statement(query, actor)))
        size = max(1, min(query.page_size, 100))
        return Page(items, min(total, COUNT_CAP), max(1, query.page), size, total_exact=total <= COUNT_CAP)

    async def shown(self, job_ids: builtins.list[str], actor: Actor = SYSTEM) -> builtins.list[ScheduledJob]:
        """The live schedules among ``job_ids`` that the actor can see (an open list's rows)."""
        self._require(actor, VIEW)
        ids = [job_id for job_id in job_ids[:100] if _usable_key(job_id, 200)]
        if not ids:
            return []
        async with self.sessions() as session:
            rows = await session.scalars(
                sa.select(ScheduledJob).where(
                    ScheduledJob.id.in_(ids), ScheduledJob.deleted_at.is_(None), visible_to(actor)
                )
            )
            return list(rows)

    async def deleted(self, query: TrashQuery | None = None, actor: Actor = SYSTEM) -> Page:
        """The deleted schedules ``actor`` can see, newest deletion first (the trash)."""
        query = query or TrashQuery()
        self._require(actor, VIEW)
        rows, count = trash_statements(query, actor)
        async with self.sessions() as session:
            items = list(await session.scalars(rows))
            total = await session.scalar(count) or 0
        size = max(1, min(query.page_size, 100))
        return Page(items, min(total, COUNT_CAP), max(1, query.page), size, total_exact=total <= COUNT_CAP)

    async def audit_trail(self, job_id: str, actor: Actor = SYSTEM, limit: int = 100) -> builtins.list[AuditEntry]:
        async with self.sessions() as session:
            await self._load_visible(session, job_id, actor, VIEW, include_deleted=True)
            rows = await session.scalars(
                sa.select(AuditEntry)
                .where(
                    AuditEntry.job_id == job_id,
                    owned_visible_to(actor, AuditEntry.tenant_id, AuditEntry.organization_id),
                )
                .order_by(AuditEntry.id.desc())
                .limit(limit)
            )
            return list(rows)

    async def runs(self, job_id: str, query: RunQuery | None = None, actor: Actor = SYSTEM) -> Page:
        """A schedule's run history, newest first (the schedule may be deleted: history stays)."""
        query = query or RunQuery()
        rows, count = runs_statement(job_id, query, actor)
        async with self.sessions() as session:
            await self._load_visible(session, job_id, actor, VIEW, include_deleted=True)
            items = list(await session.scalars(rows))
            total = await session.scalar(count) or 0
        size = max(1, min(query.page_size, 100))
        return Page(items, min(total, COUNT_CAP), max(1, query.page), size, total_exact=total <= COUNT_CAP)

    async def snapshot(self, job_id: str, history: RunQuery, recent: int, actor: Actor = SYSTEM) -> JobSnapshot:
        """A schedule, its newest ``recent`` runs and a page of its history, read together.

        On PostgreSQL the three reads share one snapshot (a read-only REPEATABLE READ
        transaction), so the overview, the chart and the history of a page never contradict
        each other; SQLite reads them in one session, one after the other. A deleted schedule
        is read too: its page stays readable until the trash is purged.
        """
        rows, count = runs_statement(job_id, history, actor)
        newest, _ = runs_statement(job_id, RunQuery(page_size=recent), actor)
        async with self.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                await session.connection(
                    execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
                )
            job = await self._load_visible(session, job_id, actor, VIEW, include_deleted=True)
            chart = list(await session.scalars(newest))
            items = list(await session.scalars(rows))
            total = await session.scalar(count) or 0
        size = max(1, min(history.page_size, 100))
        page = Page(items, min(total, COUNT_CAP), max(1, history.page), size, total_exact=total <= COUNT_CAP)
        return JobSnapshot(job, chart, page)

    async def get_run(self, job_id: str, run_id: str, actor: Actor = SYSTEM) -> ScheduledJobRun:
        async with self.sessions() as session:
            await self._load_visible(session, job_id, actor, VIEW, include_deleted=True)
            run = await session.get(ScheduledJobRun, run_id) if _usable_key(run_id, 36) else None
        if run is None or run.job_id != job_id or not actor.can_see_owned(run.tenant_id, run.organization_id):
            raise NotFound(f"no run with id '{run_id}'")
        return run

    async def find_run(self, run_id: str, actor: Actor = SYSTEM) -> ScheduledJobRun:
        """A run by its id alone, if the actor can see its schedule."""
        async with self.sessions() as session:
            run = await session.get(ScheduledJobRun, run_id) if _usable_key(run_id, 36) else None
            try:
                if run is not None:
                    await self._load_visible(session, run.job_id, actor, VIEW, include_deleted=True)
            except NotFound:
                run = None
        if run is not None and not actor.can_see_owned(run.tenant_id, run.organization_id):
            run = None
        if run is None:
            raise NotFound(f"no run with id '{run_id}'")
        return run

    async def source_modules(self, actor: Actor = SYSTEM) -> builtins.list[str]:
        """The modules that registered schedules the actor can see (for a filter's choices)."""
        async with self.sessions() as session:
            return list(await session.scalars(source_modules_statement(actor)))

    async def counts(self) -> dict[str, int]:
        """Totals for status displays: live schedules, enabled ones, and those due now."""
        live = ScheduledJob.deleted_at.is_(None)
        enabled = sa.and_(live, ScheduledJob.is_enabled)
        due = sa.and_(enabled, ScheduledJob.next_run_at <= self.clock())
        async with self.sessions() as session:
            row = (
                await session.execute(
                    sa.select(
                        sa.func.count().filter(live),
                        sa.func.count().filter(enabled),
                        sa.func.count().filter(due),
                    ).select_from(ScheduledJob)
                )
            ).one()
        return {"total": row[0], "enabled": row[1], "due_now": row[2]}

    # ----- changing ------------------------------------------------------------------------

    async def register(self, registration: dict[str, Any]) -> ScheduledJob:
        """Upsert a module's schedule by its stable id (e.g. ``currencies:fetch-rates:<org>``).

        Re-registering an existing schedule updates its definition but keeps whether ops
        enabled or disabled it. A registration never takes over a schedule of another scope or
        one the module did not make (a user's, another module's), live or deleted.
        """
        job_id, data = _registration(registration)
        async with self.sessions() as session:
            # Most registrations repeat what is stored (every start of a module): that needs no
            # lock and no write, so it is checked first.
            job = await session.get(ScheduledJob, job_id)
            if job is not None and job.deleted_at is None:
                step = self.upserts.plan_step(job_id, data, job, SYSTEM, REGISTER)
                if step.action == "unchanged":
                    return job
        try:
            await self.upserts.run([(job_id, data)], SYSTEM, REGISTER)
        except ValidationError as exc:
            raise ValidationError({field.split(".", 1)[1]: message for field, message in exc.errors.items()}) from None
        return await self.get(job_id)

    async def register_many(self, registrations: builtins.list[dict[str, Any]]) -> builtins.list[tuple[str, str]]:
        """``register`` for many schedules at once (a module with one per tenant or organization).

        The same validation, audit entries and ops-owned fields as ``register``, in one
        transaction: all or nothing, errors keyed ``[index].field``. New schedules and their
        audit entries are inserted as plain rows, a statement for all of them; unchanged ones
        write nothing. Returns ``(id, "create" | "update" | "unchanged")`` in the order given.
        """
        items: list[tuple[str, dict[str, Any]] | None] = []
        errors: dict[str, str] = {}
        for index, registration in enumerate(registrations):
            try:
                items.append(_registration(registration))
            except ValidationError as exc:
                items.append(None)
                errors.update(indexed(index, exc))
        if errors:
            raise ValidationError(errors)
        return await self.upserts.run([item for item in items if item is not None], SYSTEM, REGISTER)

    async def import_many(
        self, items: builtins.list[dict[str, Any]], actor: Actor = SYSTEM, *, dry_run: bool = False
    ) -> builtins.list[tuple[str, str]]:
        """Create or replace schedules by id, all or nothing (import files).

        Each item is a whole definition: absent fields take their defaults. Every item is
        validated before anything is written, and the writes share one transaction. Returns
        ``(id, "create" | "update" | "unchanged")`` per item; errors are keyed ``[index].field``.
        """
        self._require(actor, MANAGE)
        parsed: list[tuple[str, dict[str, Any]]] = []
        errors: dict[str, str] = {}
        for index, raw in enumerate(items):
            data = dict(raw)
            try:
                parsed.append((validate_job_id(data.pop("id", None)), data))
            except ValidationError as exc:
                parsed.append(("", data))
                errors.update(indexed(index, exc))
        return await self.upserts.run(parsed, actor, IMPORT, dry_run=dry_run, errors=errors)

    async def create(self, data: dict[str, Any], actor: Actor = SYSTEM) -> ScheduledJob:
        data = dict(data)
        given = data.pop("id", None)
        self._require(actor, MANAGE)
        errors: dict[str, str] = {}
        job_id = new_id()
        if given:
            try:
                job_id = validate_job_id(given)
            except ValidationError as exc:
                errors.update(exc.errors)
        try:
            clean = clean_job(data, base=dict(DEFAULTS), registry=self.registry, settings=self.settings)
        except ValidationError as exc:
            raise ValidationError({**errors, **exc.errors}) from None
        if errors:
            raise ValidationError(errors)
        check_actor_scope(actor, clean)
        try:
            async with self.sessions.begin() as session:
                existing = await session.get(ScheduledJob, job_id)
                if existing is not None:
                    check_id_free(job_id, existing, clean, actor)
                missing = await missing_scopes(session, [(None, clean)])
                if missing:
                    raise ValidationError(missing)
                job = await self.writer.insert(session, job_id, clean, actor, existing=existing)
        except IntegrityError as exc:
            if not duplicate_id(exc):
                raise
            # Created by someone else between our look and our insert.
            raise ValidationError({"id": id_not_available(job_id)}) from None
        await self.hooks.schedules_changed([job_id])
        return job

    async def update(
        self, job_id: str, changes: dict[str, Any], actor: Actor = SYSTEM, *, expected_version: int | None = None
    ) -> ScheduledJob:
        changes = dict(changes)
        async with self.sessions.begin() as session:
            job = await self._load_visible(session, job_id, actor, MANAGE)
            if "scope_type" in changes and changes["scope_type"] != job.scope_type:
                raise ValidationError({"scope_type": "the scope of a schedule cannot change; create a new one"})
            for locked in ("tenant_id", "organization_id"):
                if locked in changes and (changes[locked] or None) != getattr(job, locked):
                    raise ValidationError({locked: "the scope of a schedule cannot change; create a new one"})
            before = audit_snapshot(job)
            clean = clean_job(changes, base=before_values(job), registry=self.registry, settings=self.settings)
            check_actor_scope(actor, clean)
            if expected_version is not None and expected_version != job.version:
                raise Conflict(conflict_message(job))
            if clean == before_values(job):
                return job  # nothing changed: no new version, no audit entry
            await self.writer.apply(session, job, clean, actor, expected_version=expected_version)
            self.writer.audit(session, job, "update", actor, before, audit_snapshot(job))
        await self.hooks.schedules_changed([job_id])
        return job

    async def enable(self, job_id: str, actor: Actor = SYSTEM, *, expected_version: int | None = None) -> ScheduledJob:
        return await self._set_enabled(job_id, True, actor, None, expected_version)

    async def disable(
        self, job_id: str, actor: Actor = SYSTEM, note: str | None = None, *, expected_version: int | None = None
    ) -> ScheduledJob:
        if note is not None and (
            not isinstance(note, str) or len(note) > 500 or any(ord(c) < 32 and c not in "\t\n\r" for c in note)
        ):
            raise ValidationError({"note": "note must be text of at most 500 characters, without control characters"})
        return await self._set_enabled(job_id, False, actor, (note or "").strip() or None, expected_version)

    async def delete(self, job_id: str, actor: Actor = SYSTEM, *, expected_version: int | None = None) -> ScheduledJob:
        """Soft delete: the row stays for history and undo; it never fires again."""
        async with self.sessions.begin() as session:
            job = await self._load_visible(session, job_id, actor, MANAGE)
            before = audit_snapshot(job)
            now = self.clock()
            await self.writer.write(
                session,
                job,
                {"deleted_at": now, "deleted_by": actor.label, "next_run_at": None},
                actor,
                expected_version=expected_version,
            )
            self.writer.audit(session, job, "delete", actor, before, None)
        await self.hooks.schedules_changed([job_id])
        return job

    async def unregister(self, job_id: str) -> bool:
        """Remove a module's schedule; False when there was none."""
        try:
            await self.delete(job_id, SYSTEM)
        except NotFound:
            return False
        return True

    async def undo(self, job_id: str, actor: Actor = SYSTEM) -> ScheduledJob:
        """Revert the schedule to the state before its last change (which may be a delete)."""
        async with self.sessions.begin() as session:
            job = await self._load_visible(session, job_id, actor, MANAGE, include_deleted=True)
            last = await session.scalar(
                sa.select(AuditEntry)
                .where(AuditEntry.job_id == job_id, AuditEntry.action != "trigger")
                .order_by(AuditEntry.id.desc())
                .limit(1)
            )
            if last is None or last.before is None:
                raise ValidationError({"undo": "there is no earlier version to go back to"})
            before = audit_snapshot(job) if job.deleted_at is None else None
            definition = {k: v for k, v in last.before.items() if k not in PAUSE_FIELDS}
            clean = clean_job(definition, base=dict(DEFAULTS), registry=self.registry, settings=self.settings)
            values = dict(clean)
            values.update(deleted_at=None, deleted_by=None)
            if not clean["is_enabled"]:
                # Back to a paused version: its pause (note, who, when) comes back with it. Audit
                # entries written before pauses were recorded keep the pause the row has.
                values.update(_pause_of(last.before, job))
            await self.writer.write(session, job, values, actor, expected_version=None)
            self.writer.audit(session, job, "undo", actor, before, audit_snapshot(job))
        await self.hooks.schedules_changed([job_id])
        return job

    async def restore(self, job_id: str, actor: Actor = SYSTEM) -> ScheduledJob:
        """Bring a deleted schedule back as it was when it was deleted (a paused one stays paused).

        Like ``undo`` of a delete, its next slot is the first after now: the slots that passed
        while it was deleted are not caught up. Refused (``Conflict``) for a schedule that is not
        deleted, and (``ValidationError``) when it could not be made today as it is: its target
        is gone or no longer schedulable in its scope (a module's schedule whose module no
        longer offers it), its tenant or organization no longer exists.
        """
        async with self.sessions.begin() as session:
            job = await self._load_visible(session, job_id, actor, MANAGE, include_deleted=True)
            if job.deleted_at is None:
                raise Conflict(f"'{job.name}' is not deleted: there is nothing to restore")
            await self._check_restorable(session, job)
            values = {"deleted_at": None, "deleted_by": None}
            await self.writer.write(session, job, values, actor, expected_version=None)
            self.writer.audit(session, job, "restore", actor, None, audit_snapshot(job))
        await self.hooks.schedules_changed([job_id])
        return job

    async def trigger(self, job_id: str, actor: Actor = SYSTEM, payload: Any = None) -> ScheduledJobRun:
        """Queue a manual run now, in either strategy; the run is recorded with the user.

        ``payload``: the run's input instead of the schedule's payload (an object, or JSON text
        as a form sends it), checked as a schedule's payload is. The run records the payload it
        runs with, either way (for "run again").
        """
        async with self.sessions.begin() as session:
            job = await self._load_visible(session, job_id, actor, TRIGGER)
            given = None if payload is None else clean_payload(payload, self.settings)
            now = self.clock().replace(microsecond=0)
            run = ScheduledJobRun(
                id=new_id(),
                job_id=job.id,
                tenant_id=job.tenant_id,
                organization_id=job.organization_id,
                scheduled_for=now,
                trigger=Trigger.MANUAL,
                triggered_by=actor.label,
                status=RunStatus.QUEUED,
                attempt=1,
                not_before=now,
                enqueued_at=now,
                created_at=self.clock(),
                payload=given if given is not None else dict(job.target_payload or {}),
            )
            session.add(run)
        await self.hooks.runs_queued([run.id])
        return run

    async def cancel_run(self, run_id: str, actor: Actor = SYSTEM, *, job_id: str | None = None) -> CancelOutcome:
        """Cancel a queued run (it never starts) or ask the process running a run to stop it
        (within about a second; see ``app.domain.cancelling``). Needs the trigger permission on
        the run's schedule (``job_id``: which must be this one); a finished run is a ``Conflict``."""
        async with self.sessions.begin() as session:
            run = await session.get(ScheduledJobRun, run_id) if _usable_key(run_id, 36) else None
            if run is not None and job_id is not None and run.job_id != job_id:
                run = None
            if run is None or not actor.can_see_owned(run.tenant_id, run.organization_id):
                raise NotFound(f"no run with id '{run_id}'")
            try:
                job = await self._load_visible(session, run.job_id, actor, VIEW, include_deleted=True)
            except NotFound:
                raise NotFound(f"no run with id '{run_id}'") from None
            self._require(actor, TRIGGER)
            outcome = await request_cancel(session, run, actor.label, self.clock())
        if outcome.stopped:
            await announce_cancelled(self.events, outcome.run, job, self.clock())
        return outcome

    # ----- internals -----------------------------------------------------------------------

    def _require(self, actor: Actor, feature: str) -> None:
        if not actor.can(feature):
            raise Forbidden(f"you need the '{feature}' permission")

    async def _load_visible(
        self, session: AsyncSession, job_id: str, actor: Actor, feature: str, *, include_deleted: bool = False
    ) -> ScheduledJob:
        job = await session.get(ScheduledJob, job_id) if _usable_key(job_id, 200) else None
        if job is None or (job.deleted_at is not None and not include_deleted):
            raise NotFound(f"no schedule with id '{job_id}'")
        if not actor.can_see(job.scope_type, job.tenant_id, job.organization_id) or not actor.can(VIEW):
            raise NotFound(f"no schedule with id '{job_id}'")
        self._require(actor, feature)
        return job

    async def _check_restorable(self, session: AsyncSession, job: ScheduledJob) -> None:
        """Whether ``job`` could be made today as it is (target, schedule, scope all still valid)."""
        try:
            clean = clean_job(before_values(job), base=dict(DEFAULTS), registry=self.registry, settings=self.settings)
            problems = await missing_scopes(session, [(None, clean)])
        except ValidationError as exc:
            problems = exc.errors
        if problems:
            raise ValidationError({field: f"cannot restore: {message}" for field, message in problems.items()})

    async def _set_enabled(
        self, job_id: str, enabled: bool, actor: Actor, note: str | None, expected_version: int | None
    ) -> ScheduledJob:
        async with self.sessions.begin() as session:
            job = await self._load_visible(session, job_id, actor, MANAGE)
            if expected_version is not None and expected_version != job.version:
                raise Conflict(conflict_message(job))
            if job.is_enabled == enabled and (enabled or job.pause_note == note):
                return job
            before = audit_snapshot(job)
            values: dict[str, Any] = {"is_enabled": enabled}
            if not enabled:
                values.update(paused_at=self.clock(), paused_by=actor.label, pause_note=note)
            await self.writer.write(session, job, values, actor, expected_version=expected_version)
            self.writer.audit(session, job, "enable" if enabled else "disable", actor, before, audit_snapshot(job))
        await self.hooks.schedules_changed([job_id])
        return job


def _pause_of(version: dict[str, Any], job: ScheduledJob) -> dict[str, Any]:
    """The pause (note, who, when) an audit snapshot recorded, or ``job``'s if it has none."""
    if not any(field in version for field in PAUSE_FIELDS):
        return {field: getattr(job, field) for field in PAUSE_FIELDS}
    at = version.get("paused_at")
    return {
        "pause_note": version.get("pause_note"),
        "paused_by": version.get("paused_by"),
        "paused_at": datetime.fromisoformat(at) if isinstance(at, str) else None,
    }


def _registration(registration: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A module registration's id and definition (a module's schedule unless it says otherwise)."""
    data = dict(registration)
    job_id = validate_job_id(data.pop("id", None))
    data.setdefault("source_type", "module")
    return job_id, data


def _usable_key(key: object, max_length: int) -> bool:
    """Whether ``key`` can be looked up at all: PostgreSQL refuses text with NUL in a query."""
    return isinstance(key, str) and len(key) <= max_length and "\x00" not in key
