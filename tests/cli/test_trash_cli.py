"""``mercato scheduler trash`` and ``mercato scheduler restore``, run as real processes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.persistence.models import AuditEntry, ScheduledJob
from app.runtime import Runtime
from app.settings import load_settings
from tests.support.cli import mercato
from tests.support.factories import DAILY_SALES_REPORT, job_definition

pytestmark = pytest.mark.slow  # every test runs the command line as a process


async def _trash_two(db_url: str) -> None:
    runtime = Runtime.create(load_settings({"DATABASE_URL": db_url}))
    try:
        await runtime.users.ensure_scope("acme", "acme-eu")
        await runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
        await runtime.scheduler.create(job_definition(id="core:ping", name="Ping"))
        await runtime.scheduler.disable("core:ping", note="noisy")
        await runtime.scheduler.delete("reports:daily:acme-eu")
        await runtime.scheduler.delete("core:ping")
    finally:
        await runtime.close()


async def test_trash_lists_deleted_schedules_and_restore_brings_one_back(db_url):
    await _trash_two(db_url)
    empty_search = mercato("scheduler", "trash", "--search", "nothing-like-it", db_url=db_url)
    assert empty_search.returncode == 0 and empty_search.stdout == "no deleted schedules\n"

    table = mercato("scheduler", "trash", db_url=db_url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "SCOPE", "DELETED", "AT", "DELETED", "BY", "PURGED", "AFTER"]
    assert lines[1].startswith("core:ping") and "system" in lines[1]  # newest deletion first
    assert lines[2].startswith("reports:daily:acme-eu") and "organization/acme/acme-eu" in lines[2]

    listed = json.loads(mercato("scheduler", "trash", "--json", db_url=db_url).stdout)
    assert [j["id"] for j in listed] == ["core:ping", "reports:daily:acme-eu"]
    assert listed[1]["deletedBy"] == "system" and listed[1]["purgeAt"] > listed[1]["deletedAt"]

    restored = mercato("scheduler", "restore", "reports:daily:acme-eu", db_url=db_url)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith("restored reports:daily:acme-eu (Daily sales report): next run 20")
    paused = mercato("scheduler", "restore", "core:ping", db_url=db_url)
    assert paused.stdout == "restored core:ping (Ping): still disabled, as it was when deleted\n"
    assert mercato("scheduler", "trash", db_url=db_url).stdout == "no deleted schedules\n"
    live = json.loads(mercato("scheduler", "list", "--json", db_url=db_url).stdout)
    assert sorted(j["id"] for j in live) == ["core:ping", "reports:daily:acme-eu"]


async def test_restore_errors_are_one_line_and_exit_1(db_url):
    await _trash_two(db_url)
    assert mercato("scheduler", "restore", "reports:daily:acme-eu", db_url=db_url).returncode == 0
    live = mercato("scheduler", "restore", "reports:daily:acme-eu", db_url=db_url)
    assert live.returncode == 1
    assert live.stderr == "Error: 'Daily sales report' is not deleted: there is nothing to restore\n"
    unknown = mercato("scheduler", "restore", "no-such-schedule", db_url=db_url)
    assert unknown.returncode == 1 and unknown.stderr == "Error: no schedule with id 'no-such-schedule'\n"


async def test_cleanup_purges_schedules_deleted_longer_ago_than_the_trash_retention(db_url):
    await _trash_two(db_url)
    kept = mercato("scheduler", "cleanup", db_url=db_url)
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.splitlines()[1] == (
        "purged 0 deleted schedules (deleted more than 30 days ago), with 0 runs and 0 audit entries"
    )
    await _age(db_url, "core:ping", days=40)
    purged = mercato("scheduler", "cleanup", db_url=db_url)
    assert purged.stdout.splitlines()[1] == (
        "purged 1 deleted schedule (deleted more than 30 days ago), with 0 runs and 3 audit entries"
    )
    assert [j["id"] for j in json.loads(mercato("scheduler", "trash", "--json", db_url=db_url).stdout)] == [
        "reports:daily:acme-eu"
    ]
    await _age(db_url, "reports:daily:acme-eu", days=10)
    shorter = mercato("scheduler", "cleanup", "--trash-days", "7", db_url=db_url)
    assert shorter.stdout.splitlines()[1].startswith("purged 1 deleted schedule (deleted more than 7 days ago)")
    refused = mercato("scheduler", "cleanup", "--trash-days", "0", db_url=db_url)
    assert refused.returncode == 2 and "Invalid value for '--trash-days'" in refused.stderr


async def _age(db_url: str, job_id: str, *, days: int) -> None:
    """Move a deleted schedule's deletion and audit trail ``days`` into the past (the CLI runs on
    the real clock)."""
    runtime = Runtime.create(load_settings({"DATABASE_URL": db_url}))
    try:
        async with runtime.sessions.begin() as session:
            job = await session.get(ScheduledJob, job_id)
            job.deleted_at -= timedelta(days=days)
            for entry in await session.scalars(sa.select(AuditEntry).where(AuditEntry.job_id == job_id)):
                entry.created_at -= timedelta(days=days)
    finally:
        await runtime.close()
