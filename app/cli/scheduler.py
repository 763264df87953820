"""``mercato scheduler``: inspect and operate schedules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click

from app import engine
from app.cli.runner import echo_json, echo_table, fail, iso, with_runtime
from app.domain.instants import UNREADABLE, parse_instant
from app.domain.listing import JobQuery
from app.domain.run_log_reads import MAX_LIMIT, read_run_log
from app.domain.vocabulary import FAILURES
from app.runtime import Runtime
from app.settings import SettingsError, get_settings


@click.group()
def scheduler() -> None:
    """Schedules: list, status, preview, run, logs, start, cleanup."""


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


@scheduler.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_runtime
async def status(runtime: Runtime, as_json: bool) -> None:
    """Strategy, poll interval and schedule counts."""
    counts = await runtime.scheduler.counts()
    data = {
        "strategy": runtime.settings.queue_strategy,
        "pollIntervalMs": runtime.settings.scheduler_poll_interval_ms,
        "total": counts["total"],
        "enabled": counts["enabled"],
        "dueNow": counts["due_now"],
    }
    if as_json:
        echo_json(data)
        return
    click.echo(f"strategy:       {data['strategy']}")
    click.echo(f"poll interval:  {data['pollIntervalMs']} ms")
    click.echo(f"schedules:      {data['total']} ({data['enabled']} enabled)")
    click.echo(f"due now:        {data['dueNow']}")


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


@scheduler.command("run")
@click.argument("job_id")
@click.option(
    "--no-wait", is_flag=True, help="Queue the run and return (local strategy: a running poller picks it up)."
)
@with_runtime
async def run_now(runtime: Runtime, job_id: str, no_wait: bool) -> None:
    """Trigger a manual run of JOB_ID now (recorded with trigger 'manual')."""
    from app.strategies.manual import run_manually

    outcome = await run_manually(runtime, job_id, wait=not no_wait)
    click.echo(outcome.message)
    if outcome.status in FAILURES:
        raise SystemExit(1)


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
@with_runtime
async def cleanup(runtime: Runtime, days: int | None) -> None:
    """Delete run history older than the retention period; prints how many rows went."""
    from app.domain.history import delete_expired_runs

    deleted = await delete_expired_runs(runtime, days=days)
    kept = days or runtime.settings.scheduler_history_retention_days
    click.echo(f"deleted {deleted} run{'s' if deleted != 1 else ''} older than {kept} day{'s' if kept != 1 else ''}")


def _register_transfer() -> None:
    from app.cli.transfer import export_schedules, import_schedules

    scheduler.add_command(export_schedules)
    scheduler.add_command(import_schedules)


_register_transfer()
