"""The JSON shapes of the API, as msgspec structs: they validate request bodies, encode
responses and are what ``/schema`` documents. Field names are camelCase on the wire.

Request structs check structure and types only; the domain (``clean_job``) checks meaning
(ranges, cron syntax, timezones, targets, scope) and reports every bad field at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, Self

from msgspec import UNSET, Struct, UnsetType

from app import engine
from app.domain.actors import SCOPES
from app.domain.fieldnames import camel
from app.domain.heartbeats import PROCESS_KINDS, PROCESS_STATES, ProcessView
from app.domain.run_listing import RunListing, RunsOverview
from app.domain.run_log_reads import RunLogPage
from app.domain.stacks import shown_stack
from app.domain.validation import CATCH_UP_POLICIES, OVERLAP_POLICIES, SOURCE_TYPES, TARGET_TYPES
from app.domain.vocabulary import RUN_STATUSES, RUN_TRIGGERS
from app.persistence.models import AuditEntry as AuditRow
from app.persistence.models import ScheduledJob, ScheduledJobRun

# Literal[tuple] is Literal[*tuple]: the allowed values come from the domain, written once.
Scope = Literal[SCOPES]  # type: ignore[valid-type]
ScheduleType = Literal[engine.SCHEDULE_TYPES]  # type: ignore[valid-type]
TargetType = Literal[TARGET_TYPES]  # type: ignore[valid-type]
CatchUpPolicy = Literal[CATCH_UP_POLICIES]  # type: ignore[valid-type]
OverlapPolicy = Literal[OVERLAP_POLICIES]  # type: ignore[valid-type]
SourceType = Literal[SOURCE_TYPES]  # type: ignore[valid-type]
RunStatus = Literal[RUN_STATUSES]  # type: ignore[valid-type]
RunTrigger = Literal[RUN_TRIGGERS]  # type: ignore[valid-type]


class Problem(Struct, omit_defaults=True):
    """An error (RFC 9457). ``errors`` maps a field or parameter to what is wrong with it."""

    type: str
    title: str
    status: int
    detail: str
    errors: dict[str, str] | UnsetType = UNSET


# ----- schedules ---------------------------------------------------------------------------


class Job(Struct, rename="camel"):
    id: str
    name: str
    description: str
    scope_type: Scope
    tenant_id: str | None
    organization_id: str | None
    schedule_type: ScheduleType
    schedule_value: str
    timezone: str
    target_type: TargetType
    target_queue: str | None
    target_command: str | None
    target_payload: dict[str, Any]
    require_feature: str | None
    is_enabled: bool
    paused_at: datetime | None
    paused_by: str | None
    pause_note: str | None
    catch_up_policy: CatchUpPolicy
    catch_up_window_seconds: int
    overlap_policy: OverlapPolicy
    jitter_seconds: int
    timeout_seconds: int | None
    max_retries: int
    retry_backoff_seconds: int
    start_at: datetime | None
    end_at: datetime | None
    max_runs: int | None
    run_count: int
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: RunStatus | None
    source_type: SourceType
    source_module: str | None
    version: int
    created_by: str | None
    updated_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: ScheduledJob) -> Job:
        return cls(**{name: getattr(job, name) for name in cls.__struct_fields__})


class DeletedJob(Job, rename="camel"):
    """A schedule in the trash: who deleted it and when, and when it goes for good."""

    deleted_at: datetime
    deleted_by: str | None
    #: The first cleanup after this instant removes it, with its runs and audit entries.
    purge_at: datetime

    @classmethod
    def deleted(cls, job: ScheduledJob, retention_days: int) -> DeletedJob:
        assert job.deleted_at is not None  # the trash holds deleted schedules only
        fields = {name: getattr(job, name) for name in Job.__struct_fields__}
        purge = job.deleted_at + timedelta(days=retention_days)
        return cls(**fields, deleted_at=job.deleted_at, deleted_by=job.deleted_by, purge_at=purge)


class DeletedJobPage(Struct, rename="camel"):
    items: list[DeletedJob]
    total: int
    page: int
    page_size: int
    total_exact: bool


class JobFields(Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """Every settable field; absent fields keep their default (create) or current value (update)."""

    description: str | None | UnsetType = UNSET
    scope_type: Scope | UnsetType = UNSET
    tenant_id: str | None | UnsetType = UNSET
    organization_id: str | None | UnsetType = UNSET
    schedule_type: ScheduleType | UnsetType = UNSET
    timezone: str | None | UnsetType = UNSET
    target_type: TargetType | UnsetType = UNSET
    target_queue: str | None | UnsetType = UNSET
    target_command: str | None | UnsetType = UNSET
    target_payload: dict[str, Any] | None | UnsetType = UNSET
    require_feature: str | None | UnsetType = UNSET
    is_enabled: bool | UnsetType = UNSET
    catch_up_policy: CatchUpPolicy | UnsetType = UNSET
    catch_up_window_seconds: int | UnsetType = UNSET
    overlap_policy: OverlapPolicy | UnsetType = UNSET
    jitter_seconds: int | UnsetType = UNSET
    timeout_seconds: int | None | UnsetType = UNSET
    max_retries: int | UnsetType = UNSET
    retry_backoff_seconds: int | UnsetType = UNSET
    start_at: datetime | None | UnsetType = UNSET
    end_at: datetime | None | UnsetType = UNSET
    max_runs: int | None | UnsetType = UNSET
    source_type: SourceType | UnsetType = UNSET
    source_module: str | None | UnsetType = UNSET

    def given(self) -> dict[str, Any]:
        """The fields the caller sent, by their domain (snake_case) names."""
        return {
            name: getattr(self, name)
            for name in self.__struct_fields__
            if name != "version" and getattr(self, name) is not UNSET
        }


class JobCreate(JobFields, kw_only=True):
    """A new schedule. Without ``id`` the server picks one (a UUID)."""

    name: str
    schedule_value: str
    id: str | UnsetType = UNSET


class JobPatch(JobFields, kw_only=True):
    """Changed fields only. ``version`` (or the ``If-Match`` header) makes the change conditional."""

    name: str | UnsetType = UNSET
    schedule_value: str | UnsetType = UNSET
    version: int | UnsetType = UNSET


class DisableInput(Struct, forbid_unknown_fields=True):
    """Why the schedule is paused; shown beside it in the admin UI."""

    note: str | None = None


class TriggerInput(Struct, forbid_unknown_fields=True):
    """A manual run's input: ``payload`` replaces the schedule's payload for this run (checked
    like it: a JSON object, at most ``SCHEDULER_MAX_PAYLOAD_BYTES``). Absent or null: the
    schedule's payload."""

    payload: dict[str, Any] | None = None


class JobPage(Struct, rename="camel"):
    items: list[Job]
    total: int
    page: int
    page_size: int
    #: False when counting stopped at 10,000 (``total`` is then a lower bound).
    total_exact: bool


class AuditEntry(Struct, rename="camel"):
    id: str
    action: str
    actor: str
    #: The schedule's settable fields before and after the change (camelCase), or null.
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def of(cls, entry: AuditRow) -> AuditEntry:
        def fields(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
            return None if snapshot is None else {camel(k): v for k, v in snapshot.items()}

        return cls(entry.id, entry.action, entry.actor, fields(entry.before), fields(entry.after), entry.created_at)


class AuditTrail(Struct):
    items: list[AuditEntry]


# ----- runs --------------------------------------------------------------------------------


class RunSummary(Struct, rename="camel"):
    id: str
    job_id: str
    tenant_id: str | None
    organization_id: str | None
    scheduled_for: datetime
    trigger: RunTrigger
    triggered_by: str | None
    status: RunStatus
    reason: str | None
    attempt: int
    not_before: datetime | None
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    error_message: str | None
    created_at: datetime
    #: When someone asked to cancel the run, and who (null: nobody).
    cancel_requested_at: datetime | None
    cancelled_by: str | None

    @classmethod
    def of(cls, run: ScheduledJobRun) -> Self:
        return cls(**{name: getattr(run, name) for name in cls.__struct_fields__})


class Run(RunSummary, rename="camel"):
    """One run with everything recorded about it (stack trace, result)."""

    error_stack: str | None
    result: Any
    queue_job_id: str | None
    #: The payload the target got, for a manual run; null for a scheduled run (it ran with its
    #: schedule's payload of the time).
    payload: dict[str, Any] | None

    @classmethod
    def of(cls, run: ScheduledJobRun) -> Self:
        # Rows recorded before stacks were stored without the server's paths show none either.
        shown = super().of(run)
        shown.error_stack = shown_stack(shown.error_stack)
        return shown


class RunPage(Struct, rename="camel"):
    items: list[RunSummary]
    total: int
    page: int
    page_size: int
    total_exact: bool


class RunListed(RunSummary, rename="camel"):
    """A run in the list across schedules, with its schedule's name (null when the schedule
    row is gone) and whether the schedule is deleted (its history stays)."""

    job_name: str | None
    job_deleted: bool

    @classmethod
    def listed(cls, listing: RunListing) -> Self:
        summary = RunSummary.of(listing.run)
        fields = {name: getattr(summary, name) for name in RunSummary.__struct_fields__}
        return cls(**fields, job_name=listing.job_name, job_deleted=listing.job_deleted)


class StatusCount(Struct, rename="camel"):
    status: RunStatus
    #: At most 10,000: counting stops there (``exact`` is then false).
    count: int
    exact: bool


class AllRunsPage(Struct, rename="camel"):
    items: list[RunListed]
    #: The runs matching every filter (the sum of the chosen statuses' counts).
    total: int
    page: int
    page_size: int
    total_exact: bool
    #: Runs of each status for the other filters (the status filter left out), in a run's life order.
    counts: list[StatusCount]

    @classmethod
    def of(cls, overview: RunsOverview) -> AllRunsPage:
        page = overview.page
        return cls(
            [RunListed.listed(item) for item in page.items],
            page.total,
            page.page,
            page.page_size,
            page.total_exact,
            [StatusCount(c.status, c.count, c.exact) for c in overview.counts],
        )


class RunLogLine(Struct, rename="camel"):
    #: 1, 2, ... within the run: the order the lines were logged in.
    seq: int
    at: datetime
    #: The logging level's name: DEBUG, INFO, WARNING, ERROR, CRITICAL.
    level: str
    message: str


class RunLog(Struct, rename="camel"):
    """A run's log lines after a cursor, oldest first (at most ``limit``)."""

    run_id: str
    #: The run's status when the lines were read.
    status: RunStatus
    lines: list[RunLogLine]
    #: Ask with ``after`` set to this for the lines that follow.
    next_after: int
    #: The run has finished and every line of it has been read: asking again gives nothing new.
    complete: bool

    @classmethod
    def of(cls, page: RunLogPage) -> Self:
        return cls(
            run_id=page.run.id,
            status=page.run.status,
            lines=[RunLogLine(line.seq, line.logged_at, line.level, line.message) for line in page.lines],
            next_after=page.after,
            complete=page.complete,
        )


# ----- catalog -----------------------------------------------------------------------------


class Target(Struct, rename="camel"):
    type: TargetType
    name: str
    label: str
    description: str
    #: An example payload.
    payload_hint: dict[str, Any]
    #: The scopes a schedule of this target may have (of those the caller may schedule in).
    scopes: list[Scope]


class TargetList(Struct):
    items: list[Target]


class Preview(Struct, rename="camel"):
    schedule_type: ScheduleType
    schedule_value: str
    timezone: str
    #: The schedule in words, e.g. "At 09:00, Monday through Friday".
    description: str
    #: The next slots, in the schedule's timezone.
    slots: list[datetime]


# ----- import / export ---------------------------------------------------------------------


class ImportItem(Struct):
    id: str
    action: Literal["create", "update", "unchanged"]


class ImportResult(Struct, rename="camel"):
    #: True when nothing was written (``dryRun=true``).
    dry_run: bool
    items: list[ImportItem]
    created: int
    updated: int
    unchanged: int


class ExportedSchedule(JobFields, kw_only=True):
    """One whole schedule definition; a field left out takes its default."""

    id: str
    name: str
    schedule_value: str


class ScheduleFile(Struct):
    """The import/export document, exchanged as YAML (``application/yaml``)."""

    schedules: list[ExportedSchedule]
    version: int = 1


# ----- processes and health ------------------------------------------------------------------

ProcessKindName = Literal[PROCESS_KINDS]  # type: ignore[valid-type]
ProcessStateName = Literal[PROCESS_STATES]  # type: ignore[valid-type]


class Process(Struct, rename="camel", omit_defaults=True):
    """A process that fires slots or runs targets. ``host``, ``pid``, ``version`` and
    ``runsInFlight`` (its own) are given to superadmins only."""

    id: str
    #: embedded (the poller in mercato serve), poller (mercato scheduler start),
    #: async-scheduler (mercato worker scheduler), worker (a child of mercato worker start).
    kind: ProcessKindName
    #: live (heard from within three heartbeats), stopped (cleanly), lost (silent: killed or cut off).
    state: ProcessStateName
    strategy: str
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None = None
    host: str | UnsetType = UNSET
    pid: int | UnsetType = UNSET
    version: str | UnsetType = UNSET
    runs_in_flight: int | UnsetType = UNSET

    @classmethod
    def of(cls, view: ProcessView) -> Self:
        hidden = {"host", "pid", "version", "runs_in_flight"}
        return cls(
            **{name: getattr(view, name) for name in cls.__struct_fields__ if name not in hidden},
            **{name: getattr(view, name) for name in hidden if getattr(view, name) is not None},
        )


class ProcessList(Struct, rename="camel"):
    #: Processes heard from in the last hour: live ones first, then by when they were last seen.
    items: list[Process]
    #: Live processes by kind (every kind, zero included).
    live: dict[str, int]
    #: Runs running right now within your scope (every run, for a superadmin).
    runs_in_flight: int


class HealthProblem(Struct, rename="camel"):
    #: no-poller, no-async-scheduler, no-worker, slots-overdue, runs-overdue.
    code: str
    message: str
    #: The command that fixes it, when one does.
    command: str | None
    hint: str
    #: The oldest overdue slot or run (overdue problems only).
    since: datetime | None


class Health(Struct, rename="camel"):
    healthy: bool
    strategy: str
    #: Live processes by kind.
    live: dict[str, int]
    problems: list[HealthProblem]
