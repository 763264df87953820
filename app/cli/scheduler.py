"""``mercato scheduler``: inspect and operate schedules."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import click

from app import engine
from app.cli.runner import echo_json, echo_table, fail, iso, with_runtime
from app.domain import health, heartbeats
from app.domain.actors import SYSTEM
from app.domain.errors import ValidationError
from app.domain.instants import UNREADABLE, parse_instant
from app.domain.listing import JobQuery
from app.domain.run_listing import AllRunsQuery, browse_runs, check_range, parse_moment
from app.domain.run_log_reads import MAX_LIMIT, read_run_log
from app.domain.trash import TrashQuery, purge_at, purge_deleted_schedules
from app.domain.vocabulary import FAILURES, RUN_STATUSES, RUN_TRIGGERS
from app.runtime import Runtime
from app.settings import SettingsError, get_settings


@click.group()
def scheduler() -> None:
    """Schedules: list, status, runs, preview, run, cancel, logs, start, cleanup, trash, restore."""


def _bool_choice(value: str | None) -> bool | None:
    return None if value is None else value == "true"


@scheduler.command("list")
@click.option("--tenant", default=None, help="Only this tenant's schedules.")
@click.option("--scope", type=click.Choice(["system", "organization", "tenant"]), default=None)
@click.option("--enabled", type=click.Choice(["true", "false"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_runtime
async def list_jobs(
    runtime: Runtime, tenant: str | None, scope: str | None, enabled: str | None, as_json: bool
) -> None:
    """List schedules (id, name, type, schedule, status, next run)."""
    jobs, page = [], 1
    while True:
        result = await runtime.scheduler.list(
            JobQuery(tenant_id=tenant, scope_type=scope, is_enabled=_bool_choice(enabled), page=page, page_size=100)
        )
        jobs.extend(result.items)
        if len(result.items) < 100:
            break
        page += 1
    if as_json:
        echo_json(
            [
                {
                    "id": j.id,
                    "name": j.name,
                    "scopeType": j.scope_type,
                    "tenantId": j.tenant_id,
                    "organizationId": j.organization_id,
                    "scheduleType": j.schedule_type,
                    "scheduleValue": j.schedule_value,
                    "timezone": j.timezone,
                    "isEnabled": j.is_enabled,
                    "lastStatus": j.last_status,
                    "nextRunAt": iso(j.next_run_at) if j.next_run_at else None,
                }
                for j in jobs
            ]
        )
        return
    if not jobs:
        click.echo("no schedules")
        return
    echo_table(
        ["ID", "NAME", "TYPE", "SCHEDULE", "STATUS", "NEXT RUN"],
        [
            [
                j.id,
                j.name,
                j.schedule_type,
                j.schedule_value,
                ("enabled" if j.is_enabled else "disabled") + (f"/{j.last_status}" if j.last_status else ""),
                iso(j.next_run_at),
            ]
            for j in jobs
        ],
    )


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """``--since``/``--until``: a duration back from now (1h, 24h, 7d) or an instant with an offset."""
    if not value:
        return None
    try:
        return parse_moment(value, datetime.now(UTC), name=str(param.name))
    except ValidationError as exc:
        raise click.BadParameter(next(iter(exc.errors.values())), ctx, param) from None


@scheduler.command("runs")
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None, help="Only runs of this status.")
@click.option("--trigger", type=click.Choice(RUN_TRIGGERS), default=None, help="Only runs of this trigger.")
@click.option("--since", callback=_moment, help="Created at or after: 1h, 24h, 7d, or 2026-12-01T09:00:00Z.")
@click.option("--until", callback=_moment, help="Created before (the same forms as --since).")
@click.option("--job", "job_id", default=None, help="Only this schedule's runs (its id).")
@click.option("--search", default=None, help="Only schedules whose name or id contains this.")
@click.option("--tenant", default=None, help="Only this tenant's runs.")
@click.option("--org", default=None, help="Only this organization's runs.")
@click.option("--limit", type=click.IntRange(1, 100), default=25, show_default=True, help="The newest this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the counts by status) instead of a table.")
@with_runtime
async def runs(
    runtime: Runtime,
    status: str | None,
    trigger: str | None,
    since: datetime | None,
    until: datetime | None,
    job_id: str | None,
    search: str | None,
    tenant: str | None,
    org: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Runs across every schedule, newest first (e.g. --status failed --since 1h)."""
    try:
        check_range(since, until)
    except ValidationError:
        raise click.BadParameter("must be after --since", param_hint="'--until'") from None
    query = AllRunsQuery(
        status=status,
        trigger=trigger,
        job_id=job_id,
        search=search,
        tenant_id=tenant,
        organization_id=org,
        since=since,
        until=until,
        page_size=limit,
    )
    overview = await browse_runs(runtime, query, SYSTEM)
    items = overview.page.items
    counts = {c.status: c.count for c in overview.counts}
    capped = {c.status for c in overview.counts if not c.exact}
    if as_json:
        echo_json(
            {
                "items": [
                    {
                        "id": item.run.id,
                        "jobId": item.run.job_id,
                        "jobName": item.job_name,
                        "jobDeleted": item.job_deleted,
                        "tenantId": item.run.tenant_id,
                        "organizationId": item.run.organization_id,
                        "status": item.run.status,
                        "trigger": item.run.trigger,
                        "scheduledFor": iso(item.run.scheduled_for),
                        "createdAt": iso(item.run.created_at),
                        "durationMs": item.run.duration_ms,
                        "errorMessage": item.run.error_message,
                    }
                    for item in items
                ],
                "counts": [{"status": c.status, "count": c.count, "exact": c.exact} for c in overview.counts],
            }
        )
        return
    shown = [f"{counts[s]:,}{'+' if s in capped else ''} {s.replace('_', ' ')}" for s in RUN_STATUSES if counts[s]]
    click.echo(" · ".join(shown) if shown else "no runs")
    if not items:
        return
    echo_table(
        ["CREATED", "STATUS", "TRIGGER", "SCHEDULE", "RUN", "ERROR"],
        [
            [
                iso(item.run.created_at),
                item.run.status,
                item.run.trigger,
                item.run.job_id + (" (deleted)" if item.job_deleted else ""),
                item.run.id,
                _first_line(item.run.error_message or item.run.reason),
            ]
            for item in items
        ],
    )


def _first_line(text: str | None, width: int = 60) -> str:
    return (text or "").strip().split("\n", 1)[0][:width]


@scheduler.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_runtime
async def status(runtime: Runtime, as_json: bool) -> None:
    """Strategy, schedule counts, the processes that fire and run, and what needs attention."""
    counts = await runtime.scheduler.counts()
    listing = await heartbeats.process_listing(runtime, SYSTEM)
    verdict = await health.assess(runtime, SYSTEM)
    data = {
        "strategy": runtime.settings.queue_strategy,
        "pollIntervalMs": runtime.settings.scheduler_poll_interval_ms,
        "total": counts["total"],
        "enabled": counts["enabled"],
        "dueNow": counts["due_now"],
        "healthy": verdict.healthy,
        "problems": [_problem_json(problem) for problem in verdict.problems],
        "live": {kind.value: count for kind, count in listing.live.items()},
        "runsInFlight": listing.runs_in_flight,
        "processes": [_process_json(view) for view in listing.processes],
    }
    if as_json:
        echo_json(data)
        return
    click.echo(f"strategy:       {data['strategy']}")
    click.echo(f"poll interval:  {data['pollIntervalMs']} ms")
    click.echo(f"schedules:      {data['total']} ({data['enabled']} enabled)")
    click.echo(f"due now:        {data['dueNow']}")
    click.echo(f"runs in flight: {data['runsInFlight']}")
    click.echo(f"health:         {'ok' if verdict.healthy else 'needs attention'}")
    for problem in verdict.problems:
        fix = f" Run: {problem.command}." if problem.command else ""
        since = f" (oldest since {iso(problem.since)})" if problem.since else ""
        click.echo(f"  - {problem.message}{since}{fix} {problem.hint}".rstrip())
    click.echo("")
    if not listing.processes:
        click.echo("no process heard from in the last hour")
        return
    now = runtime.clock()
    echo_table(
        ["KIND", "STATE", "HOST", "PID", "VERSION", "IN FLIGHT", "STARTED", "LAST SEEN"],
        [
            [
                view.kind,
                view.state.value,
                view.host or "-",
                str(view.pid),
                view.version or "-",
                str(view.runs_in_flight),
                iso(view.started_at),
                f"{max(0, round((now - view.last_seen_at).total_seconds()))} s ago",
            ]
            for view in listing.processes
        ],
    )


def _process_json(view: heartbeats.ProcessView) -> dict[str, object]:
    return {
        "id": view.id,
        "kind": view.kind,
        "state": view.state.value,
        "host": view.host,
        "pid": view.pid,
        "version": view.version,
        "strategy": view.strategy,
        "runsInFlight": view.runs_in_flight,
        "startedAt": iso(view.started_at),
        "lastSeenAt": iso(view.last_seen_at),
        "stoppedAt": iso_or_none(view.stopped_at),
    }


def _problem_json(problem: health.Problem) -> dict[str, object]:
    return {
        "code": problem.code.value,
        "message": problem.message,
        "command": problem.command,
        "hint": problem.hint,
        "since": iso_or_none(problem.since),
    }


def iso_or_none(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@scheduler.command("preview")
@click.argument("value")
@click.option(
    "--type",
    "schedule_type",
    type=click.Choice(["cron", "interval"]),
    default=None,
    help="Schedule type (default: interval when VALUE looks like 15m, else cron).",
)
@click.option("--tz", "tz", default="UTC", show_default=True, help="IANA timezone.")
@click.option("--after", default=None, help="ISO-8601 instant to start from (default: now).")
@click.option("--count", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def preview(value: str, schedule_type: str | None, tz: str, after: str | None, count: int, as_json: bool) -> None:
    """Describe a schedule VALUE and show its next slots."""
    try:
        settings = get_settings()
    except SettingsError as exc:
        fail(str(exc))
    start = datetime.now(UTC)
    if after:
        try:
            start = parse_instant(after)  # without an offset: UTC
        except ValueError as exc:
            if str(exc) == UNREADABLE:
                fail(f"--after must be an ISO-8601 date and time, like 2026-03-29T00:00:00+01:00, not {after!r}")
            fail(f"--after {exc}, not {after!r}")
    if schedule_type is None:
        schedule_type = "interval" if value.strip()[:1].isdigit() and len(value.split()) == 1 else "cron"
    try:
        result = engine.preview(
            schedule_type,
            value,
            tz,
            after=start,
            count=count,
            min_interval_seconds=settings.scheduler_min_interval_seconds,
        )
    except engine.ScheduleError as exc:
        fail(f"{exc.field.replace('_', ' ')}: {exc.message}")
    if as_json:
        echo_json(
            {
                "type": schedule_type,
                "value": value,
                "timezone": tz,
                "description": result.description,
                "slots": [slot.isoformat() for slot in result.slots],
            }
        )
        return
    click.echo(result.description)
    for slot in result.slots:
        click.echo(slot.isoformat())
    if not result.slots:
        click.echo("(no upcoming slots)")


def _json_object(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.BadParameter('must be a JSON object, like \'{"key": "value"}\'')
    return data


@scheduler.command("run")
@click.argument("job_id")
@click.option(
    "--no-wait", is_flag=True, help="Queue the run and return (local strategy: a running poller picks it up)."
)
@click.option(
    "--payload",
    callback=_json_object,
    default=None,
    help="The run's input, a JSON object, instead of the schedule's payload (checked like it).",
)
@with_runtime
async def run_now(runtime: Runtime, job_id: str, no_wait: bool, payload: dict[str, Any] | None) -> None:
    """Trigger a manual run of JOB_ID now (recorded with trigger 'manual')."""
    from app.strategies.manual import run_manually

    outcome = await run_manually(runtime, job_id, wait=not no_wait, payload=payload)
    click.echo(outcome.message)
    if outcome.status in FAILURES:
        raise SystemExit(1)


@scheduler.command("cancel")
@click.argument("run_id")
@with_runtime
async def cancel(runtime: Runtime, run_id: str) -> None:
    """Cancel run RUN_ID: a queued run never starts; a running one is stopped within 2 s."""
    from app.strategies.manual import cli_actor

    outcome = await runtime.scheduler.cancel_run(run_id, cli_actor())
    if outcome.stopped:
        click.echo(f"cancelled run {run_id} before it started")
    else:
        click.echo(f"asked to cancel run {run_id}: the process running it stops it within 2 s")


@scheduler.command("start")
@with_runtime
async def start(runtime: Runtime) -> None:
    """Local strategy: run the poller until Ctrl+C / SIGTERM. Async strategy: reconcile Redis and exit."""
    from app.strategies.local import run_until_signalled

    if runtime.settings.queue_strategy == "async":
        from app.strategies.taskiq_sync import reconcile_all

        report = await reconcile_all(runtime)
        click.echo(report)
        return
    await run_until_signalled(runtime)


#: How often ``logs --follow`` asks for new lines.
FOLLOW_EVERY = 0.5


@scheduler.command("logs")
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run finishes.")
@with_runtime
async def logs(runtime: Runtime, run_id: str, follow: bool) -> None:
    """Print what run RUN_ID's target logged (time, level, message), oldest first."""
    after = 0
    while True:
        page = await read_run_log(runtime.scheduler, run_id, after=after, limit=MAX_LIMIT)
        for line in page.lines:
            click.echo(f"{iso(line.logged_at)}  {line.level:<8} {line.message}")
        after = page.after
        if len(page.lines) == page.limit:
            continue  # more are there already
        if page.complete:
            if follow or not after:
                status = page.run.status.replace("_", " ")
                click.echo(f"run {run_id} {status}{'' if after else '; it logged nothing'}", err=True)
            return
        if not follow:
            click.echo(f"run {run_id} is {page.run.status}; --follow prints its lines as they come", err=True)
            return
        await asyncio.sleep(FOLLOW_EVERY)


@scheduler.command("cleanup")
@click.option(
    "--days", type=click.IntRange(1, 3650), default=None, help="Keep this many days (default: the retention setting)."
)
@click.option(
    "--trash-days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Keep deleted schedules this many days (default: SCHEDULER_TRASH_RETENTION_DAYS).",
)
@with_runtime
async def cleanup(runtime: Runtime, days: int | None, trash_days: int | None) -> None:
    """Delete run history older than the retention period, and deleted schedules older than the
    trash retention (with their runs and audit entries); prints how many rows went."""
    from app.domain.history import delete_expired_runs

    deleted = await delete_expired_runs(runtime, days=days)
    kept = days or runtime.settings.scheduler_history_retention_days
    click.echo(f"deleted {deleted} run{'s' if deleted != 1 else ''} older than {kept} day{'s' if kept != 1 else ''}")
    purged = await purge_deleted_schedules(runtime, days=trash_days)
    kept = trash_days or runtime.settings.scheduler_trash_retention_days
    click.echo(
        f"purged {purged.schedules} deleted schedule{'s' if purged.schedules != 1 else ''} "
        f"(deleted more than {kept} day{'s' if kept != 1 else ''} ago), "
        f"with {purged.runs} run{'s' if purged.runs != 1 else ''} "
        f"and {purged.audit_entries} audit entr{'ies' if purged.audit_entries != 1 else 'y'}"
    )


@scheduler.command("trash")
@click.option("--search", default=None, help="Only schedules whose name or id contains this.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_runtime
async def trash(runtime: Runtime, search: str | None, as_json: bool) -> None:
    """List deleted schedules, newest deletion first (restore one with `restore ID`)."""
    jobs, page = [], 1
    while True:
        result = await runtime.scheduler.deleted(TrashQuery(search=search, page=page, page_size=100))
        jobs.extend(result.items)
        if len(result.items) < 100:
            break
        page += 1
    retention = runtime.settings.scheduler_trash_retention_days
    if as_json:
        echo_json(
            [
                {
                    "id": j.id,
                    "name": j.name,
                    "scopeType": j.scope_type,
                    "tenantId": j.tenant_id,
                    "organizationId": j.organization_id,
                    "sourceType": j.source_type,
                    "sourceModule": j.source_module,
                    "deletedAt": iso(j.deleted_at),
                    "deletedBy": j.deleted_by,
                    "purgeAt": iso(purge_at(j, retention)),
                }
                for j in jobs
            ]
        )
        return
    if not jobs:
        click.echo("no deleted schedules")
        return
    echo_table(
        ["ID", "NAME", "SCOPE", "DELETED AT", "DELETED BY", "PURGED AFTER"],
        [
            [
                j.id,
                j.name,
                "/".join(part for part in (j.scope_type, j.tenant_id, j.organization_id) if part),
                iso(j.deleted_at),
                j.deleted_by or "-",
                iso(purge_at(j, retention)),
            ]
            for j in jobs
        ],
    )


@scheduler.command("restore")
@click.argument("job_id")
@with_runtime
async def restore(runtime: Runtime, job_id: str) -> None:
    """Bring the deleted schedule JOB_ID back as it was (its next slot counted from now)."""
    job = await runtime.scheduler.restore(job_id)
    state = f"next run {iso(job.next_run_at)}" if job.is_enabled else "still disabled, as it was when deleted"
    click.echo(f"restored {job.id} ({job.name}): {state}")


def _register_transfer() -> None:
    from app.cli.transfer import export_schedules, import_schedules

    scheduler.add_command(export_schedules)
    scheduler.add_command(import_schedules)


_register_transfer()
