"""The browser tests' database: two users and a handful of realistic schedules with history."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.domain.actors import SYSTEM
from app.domain.ids import new_id
from app.persistence.models import ScheduledJobRun
from app.runtime import Runtime
from app.settings import load_settings
from tests.support.databases import TABLES
from tests.support.personas import PASSWORD_HASH

OWNER = "owner@acme.test"
VIEWER = "viewer@acme.test"
ACME = {"scope_type": "organization", "tenant_id": "acme", "organization_id": "acme-eu"}

SCHEDULES = [
    {
        "name": "Fetch currency rates",
        "description": "Refreshes EUR exchange rates for the storefront.",
        "schedule_type": "interval",
        "schedule_value": "15m",
        "timezone": "UTC",
        "target_type": "queue",
        "target_queue": "currency-rates",
        "target_payload": {"base": "EUR", "symbols": ["USD", "GBP", "PLN"]},
        "overlap_policy": "skip",
        "timeout_seconds": 60,
        "max_retries": 2,
    },
    {
        "name": "Daily sales summary",
        "description": "Yesterday's orders per channel, for the morning meeting.",
        "schedule_type": "cron",
        "schedule_value": "0 6 * * *",
        "timezone": "Europe/Warsaw",
        "target_type": "command",
        "target_command": "reports.sales-summary",
        "target_payload": {"period": "day"},
    },
    {
        "name": "Weekly sales summary",
        "schedule_type": "cron",
        "schedule_value": "0 7 * * MON",
        "timezone": "Europe/Warsaw",
        "target_type": "command",
        "target_command": "reports.sales-summary",
        "target_payload": {"period": "week"},
        "source_type": "module",
        "source_module": "reports",
    },
    {
        "name": "Partner stock sync",
        "description": "Pulls stock levels from the drop-shipping partner.",
        "schedule_type": "cron",
        "schedule_value": "*/30 * * * *",
        "timezone": "Europe/Berlin",
        "target_type": "command",
        "target_command": "demo.echo",
        "target_payload": {"fail": "partner API answered 503 Service Unavailable"},
    },
    {
        "name": "Nightly catalogue export",
        "description": "Feeds the marketplace catalogue.",
        "schedule_type": "cron",
        "schedule_value": "30 2 * * *",
        "timezone": "America/New_York",
        "target_type": "command",
        "target_command": "demo.echo",
        "target_payload": {"message": "export"},
    },
    {
        "name": "Warm product caches",
        "schedule_type": "interval",
        "schedule_value": "1h",
        "timezone": "UTC",
        "target_type": "command",
        "target_command": "demo.echo",
        "target_payload": {"message": "warm"},
        "scope_type": "tenant",
        "organization_id": None,
    },
]

#: (status, duration ms) of the history shown in the runs chart of "Fetch currency rates".
HISTORY = (
    [("succeeded", d) for d in (820, 760, 910, 1340, 700, 650)]
    + [("failed", 2150)]
    + [("succeeded", d) for d in (780, 830, 1900, 720)]
    + [
        ("timed_out", 3000),
        ("succeeded", 690),
        ("succeeded", 740),
        ("skipped", None),
        ("succeeded", 810),
        ("succeeded", 770),
    ]
)


async def seed(database_url: str) -> dict:
    runtime = Runtime.create(load_settings({"DATABASE_URL": database_url}))
    try:
        async with runtime.engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)}"))
        users = runtime.users
        for email, role in ((OWNER, "admin"), (VIEWER, "employee")):
            await users.create(
                email, "", role, tenant_id="acme", organization_id="acme-eu", password_hash=PASSWORD_HASH
            )
        jobs = [await runtime.scheduler.create({**ACME, **data}, SYSTEM) for data in SCHEDULES]
        await runtime.scheduler.disable(jobs[4].id, SYSTEM, note="Marketplace feed migration until Friday")
        await _history(runtime, jobs[0])
        # Real runs, executed by the live server's poller as soon as it starts.
        for job in jobs[:4]:
            await runtime.scheduler.trigger(job.id, SYSTEM)
        return {"jobs": {job.name: job.id for job in jobs}}
    finally:
        await runtime.close()


async def _history(runtime, job) -> None:
    now = runtime.clock().replace(microsecond=0)
    async with runtime.sessions.begin() as session:
        for index, (status, duration) in enumerate(HISTORY):
            slot = now - timedelta(minutes=15 * (len(HISTORY) - index))
            started = slot + timedelta(milliseconds=40)
            finished = started + timedelta(milliseconds=duration) if duration else started
            session.add(
                ScheduledJobRun(
                    id=new_id(),
                    job_id=job.id,
                    tenant_id=job.tenant_id,
                    organization_id=job.organization_id,
                    scheduled_for=slot,
                    trigger="scheduled",
                    triggered_by=None,
                    status=status,
                    attempt=1,
                    reason="the previous run was still running" if status == "skipped" else None,
                    not_before=slot,
                    enqueued_at=slot,
                    started_at=started,
                    finished_at=finished,
                    duration_ms=duration,
                    error_message={
                        "failed": "ValueError: unknown currency symbols: XAU",
                        "timed_out": "timed out after 3s",
                    }.get(status),
                    result={"base": "EUR", "rates": {"USD": "1.08", "GBP": "0.85", "PLN": "4.31"}}
                    if status == "succeeded"
                    else None,
                    created_at=slot,
                )
            )
