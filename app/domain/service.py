"""SchedulerService: the one place where schedules change.

The UI, the JSON API, the CLI, imports and modules all call these functions. Every change is
validated the same way, writes an audit entry, and tells the running strategy (hooks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.ids import new_id
from app.domain.actors import MANAGE, SYSTEM, TRIGGER, VIEW, Actor
from app.domain.clock import Clock, utcnow
from app.domain.errors import Conflict, Forbidden, NotFound, ValidationError
from app.domain.hooks import NoHooks, SchedulerHooks
from app.domain.listing import (
    COUNT_CAP, JobQuery, Page, RunQuery, list_statement, matches_statement, owned_visible_to, runs_statement,
    source_modules_statement,
)
from app.domain.registry import TargetRegistry
from app.domain.schedules import PAUSE_FIELDS, audit_snapshot, next_run_after
from app.domain.validation import DEFAULTS, FIELDS, clean_job, validate_job_id
from app.persistence.models import AuditEntry, Organization, ScheduledJob, ScheduledJobRun, Tenant
from app.settings import Settings

#: Fields a module registration may not overwrite on an existing schedule: ops own them.
OPS_OWNED = ("is_enabled",)


class SchedulerService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: TargetRegistry,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        hooks: SchedulerHooks | None = None,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.hooks: SchedulerHooks = hooks or NoHooks()

    # ----- reading -------------------------------------------------------------------------

    async def get(self, job_id: str, actor: Actor = SYSTEM) -> ScheduledJob:
        async with self.sessions() as session:
            return await self._load_visible(session, job_id, actor, VIEW)

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

    async def audit_trail(self, job_id: str, actor: Actor = SYSTEM, limit: int = 100) -> list[AuditEntry]:
        async with self.sessions() as session:
            await self._load_visible(session, job_id, actor, VIEW, include_deleted=True)
            rows = await session.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.job_id == job_id,
                       owned_visible_to(actor, AuditEntry.tenant_id, AuditEntry.organization_id))
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

    async def source_modules(self, actor: Actor = SYSTEM) -> list[str]:
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
                step = self._plan_step(job_id, data, job, SYSTEM, REGISTER)
                if step.action == "unchanged":
                    return job
        try:
            await self._upsert([(job_id, data)], SYSTEM, REGISTER)
        except ValidationError as exc:
            raise ValidationError({field.split(".", 1)[1]: message for field, message in exc.errors.items()}) from None
        return await self.get(job_id)

    async def register_many(self, registrations: list[dict[str, Any]]) -> list[tuple[str, str]]:
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
                errors.update(_indexed(index, exc))
        if errors:
            raise ValidationError(errors)
        return await self._upsert([item for item in items if item is not None], SYSTEM, REGISTER)

    async def import_many(
        self, items: list[dict[str, Any]], actor: Actor = SYSTEM, *, dry_run: bool = False
    ) -> list[tuple[str, str]]:
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
                errors.update(_indexed(index, exc))
        return await self._upsert(parsed, actor, IMPORT, dry_run=dry_run, errors=errors)

    async def _upsert(
        self, items: list[tuple[str, dict[str, Any]]], actor: Actor, source: str, *, dry_run: bool = False,
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
                    stored = {job.id: job for job in await session.scalars(self._lock_by_ids(ids))} if ids else {}
                    plan: list[_Step] = []
                    for index, (job_id, data) in enumerate(items):
                        if f"[{index}].id" in errors:
                            continue
                        try:
                            plan.append(self._plan_step(job_id, data, stored.get(job_id), actor, source, index))
                        except ValidationError as exc:
                            errors.update(_indexed(index, exc))
                    errors.update(await self._missing_scopes(session, [s for s in plan if s.action == "create"]))
                    if errors:
                        raise ValidationError(errors)
                    if not dry_run:
                        await self._write_plan(session, plan, actor)
                break
            except IntegrityError as exc:
                # Another process inserted one of these ids a moment ago (every process of a
                # module registers its schedules at start): planned again, it is an update.
                if attempt == 2 or not _duplicate_id(exc):
                    raise
        changed = [step.job_id for step in plan if step.action != "unchanged"]
        if changed and not dry_run:
            await self.hooks.schedules_changed(changed)
        return [(step.job_id, step.action) for step in plan]

    def _plan_step(
        self, job_id: str, data: dict[str, Any], job: ScheduledJob | None, actor: Actor, source: str, index: int = 0
    ) -> _Step:
        """What an upsert of ``data`` does to the stored row ``job`` (None: no row has the id)."""
        if job is not None and job.deleted_at is None and source == REGISTER:
            # A registration is the module's whole say; fields it leaves out and the ops-owned
            # ones keep their stored values.
            current = before_values(job)
            given = {field: value for field, value in data.items() if field not in OPS_OWNED}
            clean = clean_job(given, base=current, registry=self.registry, settings=self.settings)
        else:
            clean = clean_job(data, base=dict(DEFAULTS), registry=self.registry, settings=self.settings)
            self._check_actor_scope(actor, clean)
        if source == REGISTER:
            _check_registration_holds(job_id, job, clean)
        elif job is not None:
            self._check_id_free(job_id, job, clean, actor, updating=job.deleted_at is None)
        if job is None or job.deleted_at is not None:
            return _Step(index, job_id, "create", job, clean)
        return _Step(index, job_id, "unchanged" if clean == before_values(job) else "update", job, clean)

    def _check_id_free(self, job_id: str, job: ScheduledJob, clean: dict[str, Any], actor: Actor, *,
                       updating: bool = False) -> None:
        """Whether ``actor`` may write ``clean`` under ``job``'s id: a row outside the actor's
        scope, live or deleted, is never taken, and the refusal says only that the id is not
        available (the same words whether that row is live or deleted)."""
        if not actor.can_see(job.scope_type, job.tenant_id, job.organization_id):
            raise ValidationError({"id": id_not_available(job_id)})
        if _scope_ids(job) != _scope_ids(clean):
            if updating:
                raise ValidationError({"scope_type": "the scope of a schedule cannot change; use a new id"})
            # A deleted schedule is made again only in its own scope: its runs and audit trail stay its own.
            raise ValidationError({"id": id_not_available(job_id)})
        if job.deleted_at is None and not updating:
            raise ValidationError({"id": f"a schedule with id '{job_id}' already exists"})

    async def _missing_scopes(self, session: AsyncSession, steps: list[_Step]) -> dict[str, str]:
        """Errors for new schedules whose tenant does not exist, or whose organization is not one
        of that tenant's (one query for all of them)."""
        tenants = {step.clean["tenant_id"] for step in steps if step.clean.get("tenant_id")}
        organizations = {step.clean["organization_id"] for step in steps if step.clean.get("organization_id")}
        if not tenants and not organizations:
            return {}
        known_tenants = set(await session.scalars(sa.select(Tenant.id).where(Tenant.id.in_(tenants))))
        parent = dict((await session.execute(
            sa.select(Organization.id, Organization.tenant_id).where(Organization.id.in_(organizations))
        )).tuples().all()) if organizations else {}
        errors: dict[str, str] = {}
        for step in steps:
            tenant, organization = step.clean.get("tenant_id"), step.clean.get("organization_id")
            prefix = f"[{step.index}]." if step.index is not None else ""
            if tenant and tenant not in known_tenants:
                errors[f"{prefix}tenant_id"] = f"there is no tenant '{tenant}'"
            elif organization and parent.get(organization) != tenant:
                # The same words whether it does not exist or is another tenant's.
                errors[f"{prefix}organization_id"] = f"tenant '{tenant}' has no organization '{organization}'"
        return errors

    async def _write_plan(self, session: AsyncSession, plan: list[_Step], actor: Actor) -> None:
        """Write the planned steps (in id order, like every batch that locks schedules): new
        schedules and their audit entries as plain rows, a statement for all of them."""
        new_rows: list[dict[str, Any]] = []
        for step in sorted(plan, key=lambda step: step.job_id):
            if step.action == "create" and step.job is None:
                new_rows.append(self._new_row(step.job_id, step.clean, actor, existing=None))
            elif step.action == "create":
                await self._insert(session, step.job_id, step.clean, actor, existing=step.job)
            elif step.action == "update":
                job = step.job
                before = audit_snapshot(job)
                await self._apply(session, job, step.clean, actor, expected_version=None)
                self._audit(session, job, "update", actor, before, audit_snapshot(job))
        if new_rows:
            now = self.clock()
            await session.execute(sa.insert(ScheduledJob.__table__), new_rows)
            await session.execute(sa.insert(AuditEntry.__table__), [
                _audit_row(row, "create", actor, None, audit_snapshot(SimpleNamespace(**row)), now) for row in new_rows
            ])

    def _lock_by_ids(self, ids: list[str]) -> sa.Select:
        """Schedules by id, locked in id order (so concurrent batches cannot deadlock)."""
        query = sa.select(ScheduledJob).order_by(ScheduledJob.id).with_for_update(of=ScheduledJob)
        if self.settings.is_sqlite:
            return query.where(ScheduledJob.id.in_(ids))
        # Joined to the ids as a VALUES list, not "id IN (...)": while a bulk registration grows
        # the table its statistics lag, PostgreSQL then scans it, and a thousand bound values
        # are compared one by one with every row (measured: over a second per batch).
        wanted = sa.values(sa.column("id", sa.String), name="wanted").data([(job_id,) for job_id in ids])
        return query.join(wanted, ScheduledJob.id == wanted.c.id)

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
        self._check_actor_scope(actor, clean)
        try:
            async with self.sessions.begin() as session:
                existing = await session.get(ScheduledJob, job_id)
                if existing is not None:
                    self._check_id_free(job_id, existing, clean, actor)
                missing = await self._missing_scopes(session, [_Step(None, job_id, "create", existing, clean)])
                if missing:
                    raise ValidationError(missing)
                job = await self._insert(session, job_id, clean, actor, existing=existing)
        except IntegrityError as exc:
            if not _duplicate_id(exc):
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
            self._check_actor_scope(actor, clean)
            if expected_version is not None and expected_version != job.version:
                raise Conflict(_conflict_message(job))
            if clean == before_values(job):
                return job  # nothing changed: no new version, no audit entry
            await self._apply(session, job, clean, actor, expected_version=expected_version)
            self._audit(session, job, "update", actor, before, audit_snapshot(job))
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
            await self._write(
                session, job, {"deleted_at": now, "next_run_at": None}, actor, expected_version=expected_version
            )
            self._audit(session, job, "delete", actor, before, None)
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
            values["deleted_at"] = None
            if not clean["is_enabled"]:
                # Back to a paused version: its pause (note, who, when) comes back with it. Audit
                # entries written before pauses were recorded keep the pause the row has.
                values.update(_pause_of(last.before, job))
            await self._write(session, job, values, actor, expected_version=None)
            self._audit(session, job, "undo", actor, before, audit_snapshot(job))
        await self.hooks.schedules_changed([job_id])
        return job

    async def trigger(self, job_id: str, actor: Actor = SYSTEM) -> ScheduledJobRun:
        """Queue a manual run now, in either strategy; the run is recorded with the user."""
        async with self.sessions.begin() as session:
            job = await self._load_visible(session, job_id, actor, TRIGGER)
            now = self.clock().replace(microsecond=0)
            run = ScheduledJobRun(
                id=new_id(),
                job_id=job.id,
                tenant_id=job.tenant_id,
                organization_id=job.organization_id,
                scheduled_for=now,
                trigger="manual",
                triggered_by=actor.label,
                status="queued",
                attempt=1,
                not_before=now,
                enqueued_at=now,
                created_at=self.clock(),
            )
            session.add(run)
        await self.hooks.runs_queued([run.id])
        return run

    # ----- internals -----------------------------------------------------------------------

    def _require(self, actor: Actor, feature: str) -> None:
        if not actor.can(feature):
            raise Forbidden(f"you need the '{feature}' permission")

    def _check_actor_scope(self, actor: Actor, clean: dict[str, Any]) -> None:
        if actor.is_superadmin:
            return
        scope = clean["scope_type"]
        if scope == "system":
            raise ValidationError({"scope_type": "only superadmins can manage system schedules"})
        if clean.get("tenant_id") != actor.tenant_id:
            raise ValidationError({"tenant_id": "you can only manage schedules of your own tenant"})
        if scope == "organization" and actor.organization_id and clean.get("organization_id") != actor.organization_id:
            raise ValidationError({"organization_id": "you can only manage schedules of your own organization"})

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

    async def _insert(
        self, session: AsyncSession, job_id: str, clean: dict[str, Any], actor: Actor, existing: ScheduledJob | None
    ) -> ScheduledJob:
        """Write a new schedule of the validated definition ``clean`` (over ``existing``, a
        deleted one of the same scope made again, if given)."""
        row = self._new_row(job_id, clean, actor, existing=existing)
        if existing is None:
            job = ScheduledJob(**row)
            session.add(job)
        else:
            job = existing
            for field, value in row.items():
                setattr(job, field, value)
        await session.flush()
        self._audit(session, job, "create", actor, None, audit_snapshot(job))
        return job

    def _new_row(self, job_id: str, clean: dict[str, Any], actor: Actor, *, existing: ScheduledJob | None) -> dict[str, Any]:
        """Every column of a schedule of the validated definition ``clean``, with its first slot."""
        now = self.clock()
        row = {
            **clean, "id": job_id, "anchor_at": clean.get("start_at") or now.replace(microsecond=0), "run_count": 0,
            "version": existing.version + 1 if existing else 1, "created_by": actor.label, "updated_by": actor.label,
            "created_at": now if existing is None else existing.created_at, "updated_at": now, "deleted_at": None,
            "paused_at": None, "paused_by": None, "pause_note": None, "last_run_at": None, "last_status": None,
        }
        if existing is not None:
            # A schedule made again keeps its record of past runs.
            row.update(last_run_at=existing.last_run_at, last_status=existing.last_status)
        row["next_run_at"] = next_run_after(SimpleNamespace(**row), now) if row["is_enabled"] else None
        return row

    async def _apply(
        self, session: AsyncSession, job: ScheduledJob, clean: dict[str, Any], actor: Actor, expected_version: int | None
    ) -> None:
        values = {k: v for k, v in clean.items() if getattr(job, k) != v}
        await self._write(session, job, values, actor, expected_version=expected_version)

    async def _write(
        self, session: AsyncSession, job: ScheduledJob, values: dict[str, Any], actor: Actor, expected_version: int | None
    ) -> None:
        """One conditional UPDATE: refuses to overwrite a newer version (optimistic locking)."""
        seen = job.version
        # Detach first: the conditional UPDATE below is the only write, not an ORM flush.
        session.expunge(job)
        if expected_version is not None and expected_version != seen:
            raise Conflict(_conflict_message(job))
        now = self.clock()
        values = dict(values)
        if values.get("is_enabled") is True:
            values.setdefault("paused_at", None)
            values.setdefault("paused_by", None)
            values.setdefault("pause_note", None)
        schedule_fields = {"schedule_type", "schedule_value", "timezone", "start_at", "end_at", "max_runs", "is_enabled"}
        for field, value in values.items():
            setattr(job, field, value)
        if schedule_fields & set(values) or "deleted_at" in values:
            if "start_at" in values:
                job.anchor_at = job.start_at or job.anchor_at
            live = job.is_enabled and job.deleted_at is None
            job.next_run_at = next_run_after(job, now) if live else None
        job.version = seen + 1
        job.updated_by = actor.label
        job.updated_at = now
        stmt = (
            sa.update(ScheduledJob)
            .where(ScheduledJob.id == job.id, ScheduledJob.version == seen)
            .values({**{f: getattr(job, f) for f in (*values, "next_run_at", "anchor_at")}, "version": seen + 1,
                     "updated_by": actor.label, "updated_at": now})
            .execution_options(synchronize_session=False)
        )
        result = await session.execute(stmt)
        if result.rowcount != 1:
            raise Conflict(_conflict_message(job))

    async def _set_enabled(
        self, job_id: str, enabled: bool, actor: Actor, note: str | None, expected_version: int | None
    ) -> ScheduledJob:
        async with self.sessions.begin() as session:
            job = await self._load_visible(session, job_id, actor, MANAGE)
            if expected_version is not None and expected_version != job.version:
                raise Conflict(_conflict_message(job))
            if job.is_enabled == enabled and (enabled or job.pause_note == note):
                return job
            before = audit_snapshot(job)
            values: dict[str, Any] = {"is_enabled": enabled}
            if not enabled:
                values.update(paused_at=self.clock(), paused_by=actor.label, pause_note=note)
            await self._write(session, job, values, actor, expected_version=expected_version)
            self._audit(session, job, "enable" if enabled else "disable", actor, before, audit_snapshot(job))
        await self.hooks.schedules_changed([job_id])
        return job

    def _audit(
        self, session: AsyncSession, job: ScheduledJob, action: str, actor: Actor, before: dict | None, after: dict | None
    ) -> None:
        row = {"id": job.id, "tenant_id": job.tenant_id, "organization_id": job.organization_id}
        session.add(AuditEntry(**_audit_row(row, action, actor, before, after, self.clock())))


def _audit_row(job: dict[str, Any], action: str, actor: Actor, before: dict | None, after: dict | None,
               at: datetime) -> dict[str, Any]:
    return {"id": new_id(), "job_id": job["id"], "tenant_id": job["tenant_id"], "organization_id": job["organization_id"],
            "action": action, "actor": actor.label, "before": before, "after": after, "created_at": at}


#: What an upsert by id is: a module's registration or an import.
REGISTER, IMPORT = "register", "import"


@dataclass(frozen=True)
class _Step:
    """One item of an upsert by id, planned: its index in the batch (None: a single call),
    what it does, the stored row it meets, and its validated definition."""

    index: int | None
    job_id: str
    action: str  # "create" | "update" | "unchanged"
    job: ScheduledJob | None
    clean: dict[str, Any]


def id_not_available(job_id: str) -> str:
    return f"the id '{job_id}' is not available; choose another"


def _indexed(index: int, exc: ValidationError) -> dict[str, str]:
    return {f"[{index}].{field}": message for field, message in exc.errors.items()}


def _scope_ids(row: Any) -> tuple[str | None, str | None, str | None]:
    get = row.get if isinstance(row, dict) else lambda field: getattr(row, field)
    return get("scope_type"), get("tenant_id"), get("organization_id")


def _scope_label(scope: tuple[str | None, str | None, str | None]) -> str:
    kind, tenant, organization = scope
    if kind == "system":
        return "system scope"
    if kind == "tenant":
        return f"tenant '{tenant}'"
    return f"organization '{organization}' of tenant '{tenant}'"


def _check_registration_holds(job_id: str, job: ScheduledJob | None, clean: dict[str, Any]) -> None:
    """A module's registration updates (or makes again) only its own schedule, in its scope:
    never a user's row, another module's, or one of another scope, live or deleted. Module
    code is trusted, so the error names the conflict."""
    if job is None:
        return
    if (job.source_type, job.source_module) != (clean["source_type"], clean["source_module"]):
        owner = f"module '{job.source_module}'" if job.source_type == "module" else "a user"
        raise ValidationError({"id": (
            f"schedule '{job_id}' was made by {owner}, not by this registration "
            f"({clean['source_type']} '{clean['source_module']}'); register under another id"
        )})
    if _scope_ids(job) != _scope_ids(clean):
        raise ValidationError({"id": (
            f"schedule '{job_id}' belongs to {_scope_label(_scope_ids(job))}; a registration cannot move it "
            f"to {_scope_label(_scope_ids(clean))}; register under another id"
        )})


def _pause_of(version: dict[str, Any], job: ScheduledJob) -> dict[str, Any]:
    """The pause (note, who, when) an audit snapshot recorded, or ``job``'s if it has none."""
    if not any(field in version for field in PAUSE_FIELDS):
        return {field: getattr(job, field) for field in PAUSE_FIELDS}
    at = version.get("paused_at")
    return {"pause_note": version.get("pause_note"), "paused_by": version.get("paused_by"),
            "paused_at": datetime.fromisoformat(at) if isinstance(at, str) else None}


def _registration(registration: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A module registration's id and definition (a module's schedule unless it says otherwise)."""
    data = dict(registration)
    job_id = validate_job_id(data.pop("id", None))
    data.setdefault("source_type", "module")
    return job_id, data


def _duplicate_id(exc: IntegrityError) -> bool:
    """The insert met a schedule with the same id (PostgreSQL's primary key, or SQLite's)."""
    text = str(exc.orig)
    return "pk_scheduled_jobs" in text or "scheduled_jobs.id" in text


def _usable_key(key: object, max_length: int) -> bool:
    """Whether ``key`` can be looked up at all: PostgreSQL refuses text with NUL in a query."""
    return isinstance(key, str) and len(key) <= max_length and "\x00" not in key


def before_values(job: ScheduledJob) -> dict[str, Any]:
    return {field: getattr(job, field) for field in FIELDS}


def _conflict_message(job: ScheduledJob) -> str:
    return (
        f"'{job.name}' was changed by someone else since you opened it. "
        "Reload to see the latest version, then make your change again."
    )

