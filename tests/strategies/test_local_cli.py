"""``mercato scheduler run`` and ``cleanup`` as real processes (local strategy); the built-in cleanup schedule."""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.history import CLEANUP_JOB_ID, delete_expired_runs, ensure_cleanup_schedule
from app.domain.ids import new_id
from app.persistence.models import ScheduledJobRun
from app.runtime import Runtime
from app.settings import load_settings
from app.strategies.local import LocalScheduler
from app.strategies.manual import run_manually
from tests.support.cli import mercato
from tests.support.clock import utc
from tests.support.factories import job_definition
from tests.support.firing import fire, reload, runs_of


def mercato_local(*args: str, db_url: str):
    return mercato(*args, db_url=db_url, QUEUE_STRATEGY="local")


@pytest.mark.slow
async def test_run_now_runs_the_schedule_inline_and_reports_the_outcome(runtime, db_url):
    job = await runtime.scheduler.create(job_definition(target_payload={"message": "from the shell"}))
    result = mercato_local("scheduler", "run", job.id, db_url=db_url)
    assert result.returncode == 0, result.stderr
    [run] = await runs_of(runtime, job.id)
    assert result.stdout == f"run {run.id} of {job.id} succeeded\n"
    assert (run.trigger, run.status, run.triggered_by) == ("manual", "succeeded", f"cli:{getpass.getuser()}")
    assert run.result["echo"] == {"message": "from the shell"}
    job = await reload(runtime, job.id)
    assert (job.last_status, job.last_run_at) == ("succeeded", run.started_at)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the outcome logic is tested in-process on both
async def test_run_now_exits_1_when_the_run_fails(runtime, db_url):
    job = await runtime.scheduler.create(job_definition(target_payload={"fail": "no route to the ERP"}))
    result = mercato_local("scheduler", "run", job.id, db_url=db_url)
    assert result.returncode == 1
    [run] = await runs_of(runtime, job.id)
    assert result.stdout == f"run {run.id} of {job.id} failed: RuntimeError: no route to the ERP\n"
    assert run.status == "failed" and "Traceback" not in result.stderr


@pytest.mark.slow
def test_run_now_of_an_unknown_schedule_is_a_one_line_error(sqlite_url):
    result = mercato_local("scheduler", "run", "no-such-job", db_url=sqlite_url)
    assert result.returncode == 1
    assert result.stderr == "Error: no schedule with id 'no-such-job'\n"
    assert result.stdout == ""


# ----- history cleanup -------------------------------------------------------------------------


async def _history(runtime, now: datetime, job_id: str) -> dict[str, list[str]]:
    """Runs of several ages and states; returns their ids by what cleanup should do with them."""
    ages = {
        "old_finished": [(10, s) for s in ("succeeded", "failed", "skipped", "missed", "timed_out")] * 2,
        "old_active": [(10, "queued"), (10, "running")],
        "recent": [(1, "succeeded"), (6, "failed")],
    }
    ids: dict[str, list[str]] = {}
    minute = 0
    async with runtime.sessions.begin() as session:
        for kind, rows in ages.items():
            for days, status in rows:
                minute += 1
                at = now - timedelta(days=days, minutes=minute)
                run = ScheduledJobRun(
                    id=new_id(),
                    job_id=job_id,
                    scheduled_for=at,
                    trigger="scheduled",
                    status=status,
                    attempt=1,
                    created_at=at,
                    finished_at=None if status in ("queued", "running") else at,
                )
                session.add(run)
                ids.setdefault(kind, []).append(run.id)
    return ids


async def test_cleanup_deletes_only_old_finished_runs_in_batches(runtime, clock):
    job = await runtime.scheduler.create(job_definition())
    ids = await _history(runtime, clock(), job.id)
    assert await delete_expired_runs(runtime, days=7, batch=3) == 10
    left = {r.id for r in await runs_of(runtime, job.id)}
    assert left == set(ids["old_active"] + ids["recent"])
    assert await delete_expired_runs(runtime, days=7, batch=3) == 0


async def test_cleanup_uses_the_retention_setting_by_default(runtime, clock):
    job = await runtime.scheduler.create(job_definition())
    await _history(runtime, clock(), job.id)
    assert runtime.settings.scheduler_history_retention_days == 7
    assert await delete_expired_runs(runtime) == 10


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # deleting is tested in-process on both
async def test_cleanup_command_prints_how_many_runs_went(runtime, db_url):
    job = await runtime.scheduler.create(job_definition())
    await _history(runtime, datetime.now(UTC), job.id)
    result = mercato_local("scheduler", "cleanup", "--days", "5", db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "deleted 11 runs older than 5 days",  # the ten 10-day-old ones and the 6-day-old one
        "purged 0 deleted schedules (deleted more than 30 days ago), with 0 runs and 0 audit entries",
    ]
    again = mercato_local("scheduler", "cleanup", db_url=db_url)
    assert again.stdout.splitlines()[0] == "deleted 0 runs older than 7 days"


@pytest.mark.slow
def test_cleanup_command_refuses_a_bad_days_value(sqlite_url):
    result = mercato_local("scheduler", "cleanup", "--days", "0", db_url=sqlite_url)
    assert result.returncode == 2 and "Invalid value for '--days'" in result.stderr


async def test_the_built_in_cleanup_schedule_runs_daily_and_deletes_old_history(runtime, clock):
    await ensure_cleanup_schedule(runtime.scheduler)
    await ensure_cleanup_schedule(runtime.scheduler)  # every start calls it: the second time changes nothing
    job = await runtime.scheduler.get(CLEANUP_JOB_ID)
    assert (job.scope_type, job.schedule_value, job.timezone, job.source_module) == (
        "system",
        "17 3 * * *",
        "UTC",
        "scheduler",
    )
    assert len(await runtime.scheduler.audit_trail(job.id)) == 1
    other = await runtime.scheduler.create(job_definition())
    clock.set(utc(2026, 6, 2, 3, 17))
    ids = await _history(runtime, clock(), other.id)
    await fire(LocalScheduler(runtime))
    [run] = await runs_of(runtime, CLEANUP_JOB_ID)
    assert (run.status, run.result) == ("succeeded", {"deleted": 10, "purgedSchedules": 0})
    left = {r.id for r in await runs_of(runtime, other.id)}
    assert set(ids["old_active"] + ids["recent"]) <= left and not left & set(ids["old_finished"])


async def test_pollers_starting_together_register_the_cleanup_schedule_once(runtime, db_url):
    others = [Runtime.create(load_settings({"DATABASE_URL": db_url})) for _ in range(3)]
    try:
        await asyncio.gather(*(ensure_cleanup_schedule(r.scheduler) for r in [runtime, *others]))
    finally:
        for other in others:
            await other.close()
    assert await runtime.scheduler.exists(CLEANUP_JOB_ID)


async def test_run_now_reports_the_outcome_when_a_running_poller_takes_the_run_first(runtime, clock):
    poller = LocalScheduler(runtime)

    class EagerPoller:  # a poller in another process that wakes up and grabs the run at once
        async def schedules_changed(self, job_ids):
            pass

        async def runs_queued(self, run_ids):
            await poller.tick()

    runtime.hooks.add(EagerPoller())
    job = await runtime.scheduler.create(job_definition(target_payload={"fail": "disk full", "sleep": 0.2}))
    outcome = await run_manually(runtime, job.id)
    [run] = await runs_of(runtime, job.id)
    assert run.queue_job_id == poller.worker  # the poller ran it, not the command
    assert (outcome.status, outcome.message) == ("failed", f"run {run.id} of {job.id} failed: RuntimeError: disk full")
