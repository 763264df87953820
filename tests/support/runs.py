"""Run rows written directly (the history a test reads), and a world of schedules in several scopes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.domain.ids import new_id
from app.persistence.models import ScheduledJobRun
from tests.support.factories import ACME_EU, job_definition


async def add_runs(runtime, job, specs: list[tuple[datetime, str, str, dict[str, Any]]]) -> list[str]:
    """Runs of ``job`` (its scope ids): one per (created at = slot, status, trigger, extra columns)."""
    ids = []
    async with runtime.sessions.begin() as session:
        for at, status, trigger, extra in specs:
            ids.append(new_id())
            session.add(
                ScheduledJobRun(
                    id=ids[-1],
                    job_id=job.id,
                    tenant_id=job.tenant_id,
                    organization_id=job.organization_id,
                    scheduled_for=at,
                    trigger=trigger,
                    status=status,
                    attempt=1,
                    created_at=at,
                    **extra,
                )
            )
    return ids


#: Schedules of every kind of scope the Runs page must keep apart (key: (definition, deleted)).
WORLD = {
    "acme_eu": (job_definition(ACME_EU, id="acme-eu:export", name="Nightly export"), False),
    "acme_tenant": (
        job_definition(id="acme:invoices", name="Invoice reminders", scope_type="tenant", tenant_id="acme"),
        False,
    ),
    "acme_eu_deleted": (job_definition(ACME_EU, id="acme-eu:old-feed", name="Old price feed"), True),
    "acme_us": (
        job_definition(ACME_EU, id="acme-us:sync", name="Stock sync", organization_id="acme-us"),
        False,
    ),
    "globex": (
        job_definition(
            id="globex:export",
            name="Globex secret export",
            scope_type="organization",
            tenant_id="globex",
            organization_id="globex-us",
        ),
        False,
    ),
    "globex_deleted": (
        job_definition(
            id="globex:gone",
            name="Globex deleted job",
            scope_type="organization",
            tenant_id="globex",
            organization_id="globex-us",
        ),
        True,
    ),
    "system": (job_definition(id="system:cleanup", name="System echo"), False),
}


async def world_with_runs(runtime, now: datetime) -> dict[str, list[str]]:
    """Every schedule of ``WORLD`` with three runs: failed 10 min ago, succeeded 2 h ago (manual),
    succeeded 2 days ago (each schedule's a second before the one listed before it); deleted ones
    deleted after their runs. Returns run ids by schedule key, newest first."""
    made = {}
    for index, (key, (definition, deleted)) in enumerate(WORLD.items()):
        job = await runtime.scheduler.create(definition)
        at = now - timedelta(seconds=index)  # the schedules' runs in WORLD's order, newest first
        ids = await add_runs(
            runtime,
            job,
            [
                (at - timedelta(days=2), "succeeded", "scheduled", {"duration_ms": 40, "result": {"rows": 2}}),
                (at - timedelta(hours=2), "succeeded", "manual", {"triggered_by": "ops@example.test"}),
                (
                    at - timedelta(minutes=10),
                    "failed",
                    "scheduled",
                    {"error_message": f"ConnectionError: {key} supplier down", "error_stack": "Traceback ...\nboom"},
                ),
            ],
        )
        if deleted:
            await runtime.scheduler.delete(job.id)
        made[key] = ids[::-1]
    return made
