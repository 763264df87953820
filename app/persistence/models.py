"""The schema, as SQLAlchemy models. Alembic migrations in ``migrations/`` create it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.persistence.types import JSONType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    #: Feature flags enabled for the tenant; a schedule's ``require_feature`` is checked against them.
    features: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Role(Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    features: Mapped[list[str]] = mapped_column(JSONType, default=list)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.ForeignKey("roles.name"))
    tenant_id: Mapped[str | None] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[str | None] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    is_superadmin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    #: First characters of the token, shown in lists so people can tell tokens apart.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


#: The predicate of the list's partial indexes: schedules not deleted. Not a column the firing
#: path writes (the due index has it too), so it keeps run bookkeeping HOT.
_LIVE = sa.text("deleted_at IS NULL")


class ScheduledJob(Base):
    __tablename__ = "scheduled_jobs"

    id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    scope_type: Mapped[str] = mapped_column(sa.String(16))
    tenant_id: Mapped[str | None] = mapped_column(sa.String(64))
    organization_id: Mapped[str | None] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")

    schedule_type: Mapped[str] = mapped_column(sa.String(16))
    schedule_value: Mapped[str] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    #: Interval schedules fire on the grid anchor + k * interval.
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime())

    target_type: Mapped[str] = mapped_column(sa.String(16))
    target_queue: Mapped[str | None] = mapped_column(sa.String(200))
    target_command: Mapped[str | None] = mapped_column(sa.String(200))
    target_payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    require_feature: Mapped[str | None] = mapped_column(sa.String(200))

    is_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_by: Mapped[str | None] = mapped_column(sa.String(254))
    pause_note: Mapped[str | None] = mapped_column(sa.String(500))

    catch_up_policy: Mapped[str] = mapped_column(sa.String(16), default="latest")
    catch_up_window_seconds: Mapped[int] = mapped_column(sa.Integer, default=86_400)
    overlap_policy: Mapped[str] = mapped_column(sa.String(16), default="allow")
    jitter_seconds: Mapped[int] = mapped_column(sa.Integer, default=0)
    timeout_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    max_retries: Mapped[int] = mapped_column(sa.Integer, default=0)
    retry_backoff_seconds: Mapped[int] = mapped_column(sa.Integer, default=30)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    max_runs: Mapped[int | None] = mapped_column(sa.Integer)
    run_count: Mapped[int] = mapped_column(sa.Integer, default=0)

    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[str | None] = mapped_column(sa.String(16))

    source_type: Mapped[str] = mapped_column(sa.String(16), default="user")
    source_module: Mapped[str | None] = mapped_column(sa.String(100))
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(sa.String(254))
    updated_by: Mapped[str | None] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Who deleted it (a user's email, or "system" for a module's ``unregister``).
    deleted_by: Mapped[str | None] = mapped_column(sa.String(254))

    __table_args__ = (
        # The due-slot query: enabled, live schedules ordered by their next slot.
        sa.Index(
            "ix_scheduled_jobs_due",
            "next_run_at",
            postgresql_where=sa.text("is_enabled AND deleted_at IS NULL"),
            sqlite_where=sa.text("is_enabled AND deleted_at IS NULL"),
        ),
        # The admin list of anyone but a superadmin is scoped by tenant (and usually organization):
        # every column of the scope condition and of a page sorted by name is in the index, so
        # the count and the page's ids are read from it without visiting the table.
        sa.Index(
            "ix_scheduled_jobs_scope",
            "tenant_id",
            "organization_id",
            "name",
            "id",
            "scope_type",
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
        ),
        # Sorted lists read a page off an index; the id breaks ties in the same direction. Live
        # schedules only (what the list shows), so that a deep page's ids come from the index
        # alone (migration 0006).
        sa.Index("ix_scheduled_jobs_name", "name", "id", postgresql_where=_LIVE, sqlite_where=_LIVE),
        sa.Index("ix_scheduled_jobs_next_run", "next_run_at", "id", postgresql_where=_LIVE, sqlite_where=_LIVE),
        # The Deleted view (newest deletion first) and the purge of old deletions: deleted rows only.
        sa.Index(
            "ix_scheduled_jobs_deleted",
            "deleted_at",
            "id",
            postgresql_where=sa.text("deleted_at IS NOT NULL"),
            sqlite_where=sa.text("deleted_at IS NOT NULL"),
        ),
        sa.Index("ix_scheduled_jobs_source", "source_module"),
        sa.Index("ix_scheduled_jobs_updated", "updated_at"),
        # The list's filters, any combination, in one GIN index (btree_gin) on PostgreSQL. Columns
        # the firing path writes on every run (last status, last run) are left out on purpose: an
        # indexed column would make each of those updates write every index of the table, where
        # now they are HOT updates (the table's fill factor is 80, migration 0005).
        sa.Index(
            "ix_scheduled_jobs_filters",
            "scope_type",
            "schedule_type",
            "target_type",
            "source_type",
            "is_enabled",
            postgresql_using="gin",
        ),
    )


# Search (ILIKE '%text%') on PostgreSQL: a trigram index per searched column, so that the OR of
# the three is a BitmapOr. On lower(column), not the column: pg_trgm also answers "=", and with
# stale statistics PostgreSQL took a trigram index over the primary key for "id = ANY(...)"
# (seconds instead of milliseconds). Expression indexes exist on PostgreSQL only (the migration
# does not make them on SQLite, where a LIKE '%text%' cannot use an index anyway).
for _column in ("name", "description", "id"):
    sa.Index(
        f"ix_scheduled_jobs_search_{_column}",
        sa.func.lower(getattr(ScheduledJob, _column)).label(f"lower_{_column}"),
        postgresql_using="gin",
        postgresql_ops={f"lower_{_column}": "gin_trgm_ops"},
    )


class ScheduledJobRun(Base):
    __tablename__ = "scheduled_job_runs"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(200))
    tenant_id: Mapped[str | None] = mapped_column(sa.String(64))
    organization_id: Mapped[str | None] = mapped_column(sa.String(64))
    #: The slot this run belongs to (for manual runs: the instant of the trigger).
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime())
    trigger: Mapped[str] = mapped_column(sa.String(16))
    triggered_by: Mapped[str | None] = mapped_column(sa.String(254))
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    attempt: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: When the run may start at the earliest (slot + jitter, or retry backoff).
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    error_stack: Mapped[str | None] = mapped_column(sa.Text)
    result: Mapped[Any | None] = mapped_column(JSONType)
    queue_job_id: Mapped[str | None] = mapped_column(sa.String(100))
    #: A running run whose lease expires was lost with its process (killed, crashed).
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The payload the target got: a manual run's (the input given, or the schedule's at the
    #: trigger). NULL for scheduled runs (the schedule's payload when the run started), so the
    #: claim of a burst writes no payload per row.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    #: Who asked to cancel the run, and when (the process running it stops its target).
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(sa.String(254))

    __table_args__ = (
        # Exactly once: one scheduled run per (schedule, slot), whoever tries to claim it.
        sa.Index(
            "uq_scheduled_job_runs_slot",
            "job_id",
            "scheduled_for",
            unique=True,
            postgresql_where=sa.text("trigger IN ('scheduled', 'catch_up')"),
            sqlite_where=sa.text("trigger IN ('scheduled', 'catch_up')"),
        ),
        sa.Index("ix_scheduled_job_runs_history", "job_id", "created_at"),
        # A schedule's history filtered by status (failed runs of a schedule with a long history).
        sa.Index("ix_scheduled_job_runs_history_status", "job_id", "status", "created_at"),
        sa.Index("ix_scheduled_job_runs_created", "created_at"),
        # All runs across schedules (the Runs page, migration 0008, measured in docs/performance.md):
        # one status newest first ("failed in the last hour") and the counts by status ...
        sa.Index("ix_scheduled_job_runs_status", "status", "created_at"),
        # ... a tenant's runs newest first (everyone but a superadmin sees one tenant) ...
        sa.Index("ix_scheduled_job_runs_tenant", "tenant_id", "created_at"),
        # ... and a tenant's runs of one status, and its counts, read from the index alone (the
        # organization, which a user of one organization is limited by, is in it).
        sa.Index("ix_scheduled_job_runs_tenant_status", "tenant_id", "status", "created_at", "organization_id"),
        # Runs still in flight (overlap checks, dispatch of queued runs).
        sa.Index(
            "ix_scheduled_job_runs_active",
            "status",
            "not_before",
            postgresql_where=sa.text("status IN ('queued', 'running')"),
            sqlite_where=sa.text("status IN ('queued', 'running')"),
        ),
    )


class ScheduledJobRunLog(Base):
    """A line a run's target logged (``ctx.log``). It carries its own scope ids, so that reading
    it is authorized by them like its run's; deleted with its run (``app/domain/history.py``)."""

    __tablename__ = "scheduled_job_run_logs"

    run_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    #: 1, 2, ... within the run: the order the lines were logged in, and a reader's cursor.
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    tenant_id: Mapped[str | None] = mapped_column(sa.String(64))
    organization_id: Mapped[str | None] = mapped_column(sa.String(64))
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    level: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.Text)


class AuditEntry(Base):
    __tablename__ = "scheduler_audit_log"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(200))
    tenant_id: Mapped[str | None] = mapped_column(sa.String(64))
    organization_id: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(32))
    actor: Mapped[str] = mapped_column(sa.String(254))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (sa.Index("ix_scheduler_audit_log_job", "job_id", "created_at"),)


class WebSession(Base):
    """A browser login. The cookie holds only a random key; its hash is stored here."""

    __tablename__ = "web_sessions"

    key_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class LoginAttempt(Base):
    """A failed sign-in, kept while it counts towards a limit (``app/domain/login_throttle.py``).
    The email is stored as a hash: people type passwords into the email field too."""

    __tablename__ = "login_attempts"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    address: Mapped[str] = mapped_column(sa.String(64))
    email_hash: Mapped[str] = mapped_column(sa.String(64))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = (
        sa.Index("ix_login_attempts_address", "address", "failed_at"),
        sa.Index("ix_login_attempts_email", "email_hash", "failed_at"),
    )


class SchedulerProcess(Base):
    """A process that fires slots or runs targets, as its heartbeats last described it
    (``app/domain/heartbeats.py``). Rows not heard from for a day are pruned."""

    __tablename__ = "scheduler_processes"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    #: ``embedded`` (the poller in ``mercato serve``), ``poller`` (``mercato scheduler start``),
    #: ``async-scheduler`` (``mercato worker scheduler``), ``worker`` (``mercato worker start``).
    kind: Mapped[str] = mapped_column(sa.String(32))
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int] = mapped_column(sa.Integer)
    version: Mapped[str] = mapped_column(sa.String(64))
    strategy: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: Runs this process was executing at its last heartbeat.
    runs_in_flight: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Written when the process stops cleanly; a process that died leaves it empty.
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
