"""The execution path: each target type succeeds, fails, times out; retries; features; events.

Both strategies run targets through these functions; here the local poller drives them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domain import events
from app.domain.actors import ALL_FEATURES, Actor
from app.domain.execution import LEASE
from app.domain.firing import MISFIRE_GRACE, claim_due_slots
from app.domain.outcomes import execute_run, record_outcomes, settle_lost_runs
from app.domain.starting import TargetResult, start_runs, take_runnable
from app.persistence.models import ScheduledJobRun, Tenant
from app.strategies.local import LocalScheduler
from tests.support.clock import utc
from tests.support.factories import job_definition
from tests.support.firing import fire, reload, runs_of

SLOT = utc(2026, 6, 1, 12, 5)

COMMAND = {"target_type": "command", "target_command": "demo.echo"}
QUEUE = {"target_type": "queue", "target_queue": "currency-rates"}


@pytest.fixture
def poller(runtime):
    return LocalScheduler(runtime)


@pytest.fixture
def published(runtime):
    """Every event the bus emits, in order."""
    seen: list[events.RunEvent] = []

    async def record(event):
        seen.append(event)

    unsubscribe = runtime.events.subscribe("*", record)
    yield seen
    unsubscribe()


async def _fire_at_slot(runtime, clock, poller, **overrides):
    job = await runtime.scheduler.create(job_definition(**overrides))
    clock.set(SLOT)
    await fire(poller)
    return job, await runs_of(runtime, job.id)


# ----- targets ---------------------------------------------------------------------------------


async def test_a_command_target_gets_its_payload_and_context_and_its_result_is_kept(runtime, clock, poller):
    job, [run] = await _fire_at_slot(runtime, clock, poller, **COMMAND, target_payload={"message": "hello"})
    assert run.status == "succeeded"
    assert run.result == {"echo": {"message": "hello"}, "job": job.id, "slot": SLOT.isoformat(), "attempt": 1}


async def test_a_queue_target_runs_its_worker_with_an_idempotency_key(runtime, clock, poller):
    job, [run] = await _fire_at_slot(
        runtime, clock, poller, **QUEUE, target_payload={"base": "EUR", "symbols": ["USD", "PLN"]}
    )
    assert run.status == "succeeded" and run.finished_at is not None
    assert run.result["rates"] == {"USD": "1.08", "PLN": "4.31"}
    assert run.result["idempotency_key"] == f"{job.id}:{SLOT.isoformat()}:1"


@pytest.mark.parametrize(
    "target, payload, message, frame",
    [
        (COMMAND, {"fail": "warehouse API said 503"}, "RuntimeError: warehouse API said 503", "in echo"),
        (QUEUE, {"symbols": ["XXX"]}, "ValueError: unknown currency symbols: XXX", "in fetch_currency_rates"),
    ],
    ids=["command", "queue"],
)
async def test_a_failing_target_records_the_exception_message_and_stack(
    runtime, clock, poller, target, payload, message, frame
):
    job, [run] = await _fire_at_slot(runtime, clock, poller, **target, target_payload=payload)
    assert (run.status, run.error_message) == ("failed", message)
    assert run.error_stack.startswith("Traceback (most recent call last)")
    assert frame in run.error_stack and message in run.error_stack
    assert run.result is None
    assert (await reload(runtime, job.id)).last_status == "failed"


@pytest.mark.slow
async def test_a_target_that_runs_past_its_timeout_is_stopped_and_recorded_timed_out(runtime, clock, poller):
    job, [run] = await _fire_at_slot(runtime, clock, poller, **COMMAND, timeout_seconds=1, target_payload={"sleep": 5})
    assert (run.status, run.error_message) == ("timed_out", "timed out after 1s")
    assert 900 <= run.duration_ms < 2500
    assert (await reload(runtime, job.id)).last_status == "timed_out"


async def test_a_target_no_longer_registered_fails_with_a_clear_message(runtime, clock, poller):
    @runtime.registry.command("tests.vanishing", label="Vanishing", schedulable=True)
    async def vanishing(payload, ctx):
        return None

    try:
        job = await runtime.scheduler.create(job_definition(target_command="tests.vanishing"))
    finally:
        runtime.registry._targets.pop(("command", "tests.vanishing"))
    clock.set(SLOT)
    await fire(poller)
    [run] = await runs_of(runtime, job.id)
    assert run.status == "failed"
    assert run.error_message == "command 'tests.vanishing' is not registered as schedulable in this process"


# ----- retries ---------------------------------------------------------------------------------


async def test_a_failed_run_is_retried_with_exponential_backoff_until_retries_run_out(runtime, clock, poller):
    job = await runtime.scheduler.create(
        job_definition(
            target_payload={"fail": "boom"}, max_retries=2, retry_backoff_seconds=10, schedule_value="0 * * * *"
        )
    )
    clock.set(utc(2026, 6, 1, 13, 0))
    await fire(poller)
    first, retry = await runs_of(runtime, job.id)
    assert (first.attempt, first.status, first.trigger) == (1, "failed", "scheduled")
    assert (retry.attempt, retry.status, retry.trigger) == (2, "queued", "retry")
    assert retry.scheduled_for == first.scheduled_for
    assert retry.not_before == first.finished_at + timedelta(seconds=10)
    assert retry.reason == "retry 1 of 2 after failed"

    clock.advance(seconds=9)
    assert await fire(poller) == 0  # not before its backoff
    clock.advance(seconds=1)
    assert await fire(poller) == 1
    _, second, third = await runs_of(runtime, job.id)
    assert (second.status, third.attempt, third.status) == ("failed", 3, "queued")
    assert third.not_before == second.finished_at + timedelta(seconds=20)  # 10 s x 2^1

    clock.advance(seconds=20)
    await fire(poller)
    runs = await runs_of(runtime, job.id)
    assert [(r.attempt, r.status) for r in runs] == [(1, "failed"), (2, "failed"), (3, "failed")]
    clock.advance(minutes=10)
    assert await fire(poller) == 0  # retries used up
    job = await reload(runtime, job.id)
    assert (job.last_status, job.last_run_at) == ("failed", runs[-1].started_at)


@pytest.mark.slow
async def test_a_timed_out_run_is_retried_too(runtime, clock, poller):
    job, runs = await _fire_at_slot(
        runtime, clock, poller, timeout_seconds=1, max_retries=1, retry_backoff_seconds=5, target_payload={"sleep": 5}
    )
    assert [(r.attempt, r.status) for r in runs] == [(1, "timed_out"), (2, "queued")]
    assert runs[1].reason == "retry 1 of 1 after timed out"


async def test_a_succeeding_run_is_not_retried(runtime, clock, poller):
    job, runs = await _fire_at_slot(runtime, clock, poller, max_retries=3)
    assert [(r.attempt, r.status) for r in runs] == [(1, "succeeded")]


# ----- require_feature -------------------------------------------------------------------------


async def _tenant(runtime, clock, features):
    async with runtime.sessions.begin() as session:
        (await session.get(Tenant, "t1")).features = features


@pytest.mark.parametrize("features, status", [([], "skipped"), (["sales.reports"], "succeeded")])
async def test_require_feature_is_checked_against_the_tenants_features(
    runtime, clock, poller, published, features, status
):
    await _tenant(runtime, clock, features)
    job, [run] = await _fire_at_slot(
        runtime, clock, poller, scope_type="tenant", tenant_id="t1", require_feature="sales.reports"
    )
    assert run.status == status
    if status == "skipped":
        assert run.reason == "feature 'sales.reports' is not enabled for tenant 't1'"
        assert [e.name for e in published] == [events.SKIPPED]
        assert (await reload(runtime, job.id)).last_status == "skipped"


async def test_require_feature_is_ignored_for_system_schedules(runtime, clock, poller):
    # Documented: a system schedule belongs to no tenant, so no tenant's features can switch it off.
    job, [run] = await _fire_at_slot(runtime, clock, poller, require_feature="sales.reports")
    assert run.status == "succeeded"


async def test_a_run_of_a_schedule_disabled_after_its_slot_was_claimed_is_skipped(runtime, clock, poller, published):
    job = await runtime.scheduler.create(job_definition())
    clock.set(SLOT)
    async with runtime.sessions.begin() as session:
        await claim_due_slots(session, clock(), limit=10, grace=MISFIRE_GRACE, on_sqlite=runtime.settings.is_sqlite)
    await runtime.scheduler.disable(job.id, note="stop it")
    await fire(poller)
    [run] = await runs_of(runtime, job.id)
    assert (run.status, run.reason) == ("skipped", "the schedule is disabled")
    assert [e.name for e in published] == [events.SKIPPED]


# ----- events ----------------------------------------------------------------------------------

SHAPE = {
    "name",
    "job_id",
    "run_id",
    "slot",
    "trigger",
    "attempt",
    "tenant_id",
    "organization_id",
    "status",
    "at",
    "started_at",
    "finished_at",
    "duration_ms",
    "reason",
    "error",
}


async def test_a_successful_run_emits_started_then_completed(runtime, clock, poller, published):
    job, [run] = await _fire_at_slot(
        runtime, clock, poller, scope_type="organization", tenant_id="t1", organization_id="org-1"
    )
    started, completed = published
    assert [started.name, completed.name] == [events.STARTED, events.COMPLETED]
    for event in published:
        assert set(event.as_dict()) == SHAPE
        assert (event.job_id, event.run_id, event.slot, event.trigger, event.attempt) == (
            job.id,
            run.id,
            SLOT,
            "scheduled",
            1,
        )
        assert (event.tenant_id, event.organization_id) == ("t1", "org-1")
        assert event.started_at == run.started_at
    assert (started.status, started.finished_at, started.error) == ("running", None, None)
    assert (completed.status, completed.finished_at, completed.duration_ms) == (
        "succeeded",
        run.finished_at,
        run.duration_ms,
    )
    assert completed.as_dict()["slot"] == "2026-06-01T12:05:00+00:00"


async def test_a_failed_run_emits_failed_with_the_error(runtime, clock, poller, published):
    job, [run] = await _fire_at_slot(runtime, clock, poller, target_payload={"fail": "boom"})
    assert [e.name for e in published] == [events.STARTED, events.FAILED]
    assert (published[1].status, published[1].error) == ("failed", "RuntimeError: boom")


async def test_an_overlap_skip_emits_skipped_with_the_reason(runtime, clock, poller, published):
    await runtime.scheduler.create(
        job_definition(schedule_value="* * * * *", overlap_policy="skip", target_payload={"sleep": 0.2})
    )
    clock.set(utc(2026, 6, 1, 12, 1))
    await poller.tick()
    clock.set(utc(2026, 6, 1, 12, 2))
    await poller.tick()
    await poller.drain()
    skipped = [e for e in published if e.name == events.SKIPPED]
    assert len(skipped) == 1
    assert (skipped[0].slot, skipped[0].status) == (utc(2026, 6, 1, 12, 2), "skipped")
    assert skipped[0].reason == "previous run is still queued or running (overlap: skip)"


async def test_a_broken_subscriber_does_not_break_the_run(runtime, clock, poller):
    async def broken(event):
        raise RuntimeError("subscriber bug")

    runtime.events.subscribe(events.STARTED, broken)
    job, [run] = await _fire_at_slot(runtime, clock, poller)
    assert run.status == "succeeded"


# ----- manual runs -----------------------------------------------------------------------------


async def test_a_manual_run_is_recorded_with_its_user_and_leaves_the_next_slot_alone(runtime, clock, poller, published):
    ops = Actor(id="u1", label="ops@example.com", features=ALL_FEATURES, is_superadmin=True)
    job = await runtime.scheduler.create(job_definition(), ops)
    clock.set(utc(2026, 6, 1, 12, 2, 30))
    run = await runtime.scheduler.trigger(job.id, ops)
    await fire(poller)
    [done] = await runs_of(runtime, job.id)
    assert (done.id, done.trigger, done.triggered_by, done.status) == (run.id, "manual", "ops@example.com", "succeeded")
    assert [e.trigger for e in published] == ["manual", "manual"]
    job = await reload(runtime, job.id)
    assert (job.last_run_at, job.last_status, job.next_run_at) == (clock(), "succeeded", SLOT)


async def test_outcomes_ending_together_are_written_together_and_one_settled_meanwhile_is_lost(runtime, clock):
    jobs = [await runtime.scheduler.create(job_definition(name=f"j{i}")) for i in range(4)]
    clock.set(SLOT)
    runs = [await runtime.scheduler.trigger(job.id) for job in jobs]
    prepared = await start_runs(runtime.execution, [run.id for run in runs], worker="test:1")
    async with runtime.sessions.begin() as session:  # the last one is settled elsewhere meanwhile
        await session.execute(
            sa.update(ScheduledJobRun)
            .where(ScheduledJobRun.id == runs[3].id)
            .values(status="failed", error_message="settled elsewhere")
        )
    clock.advance(seconds=2)
    finishes = [
        TargetResult("succeeded", result={"rows": 3, "note": "ünïcode"}),
        TargetResult("succeeded", result="plain text"),
        TargetResult("failed", error="boom", stack="Traceback ..."),
        TargetResult("succeeded", result=1),
    ]
    outcomes = await record_outcomes(runtime.execution, [(p.run, p.job, f) for p, f in zip(prepared, finishes)])
    assert [(o.run_id, o.status) for o in outcomes] == [
        (runs[0].id, "succeeded"),
        (runs[1].id, "succeeded"),
        (runs[2].id, "failed"),
        (runs[3].id, "lost"),
    ]
    rows = [(await runs_of(runtime, job.id))[0] for job in jobs]
    assert [(r.status, r.result, r.error_message, r.finished_at) for r in rows] == [
        ("succeeded", {"rows": 3, "note": "ünïcode"}, None, clock()),
        ("succeeded", "plain text", None, clock()),
        ("failed", None, "boom", clock()),
        ("failed", None, "settled elsewhere", None),
    ]
    assert [r.duration_ms for r in rows[:3]] == [2000, 2000, 2000] and rows[2].error_stack == "Traceback ..."
    assert [(await reload(runtime, job.id)).last_status for job in jobs] == [
        "succeeded",
        "succeeded",
        "failed",
        "running",
    ]


# ----- lost runs -------------------------------------------------------------------------------


async def test_a_run_whose_process_died_is_settled_failed_and_retried_once(runtime, clock, poller):
    job = await runtime.scheduler.create(
        job_definition(max_retries=1, retry_backoff_seconds=30, target_payload={"sleep": 0.3})
    )
    clock.set(SLOT)
    assert await poller.tick() == 1  # started, and now "the process dies": its lease runs out
    clock.advance(seconds=LEASE.total_seconds() + 1)

    settled = await settle_lost_runs(runtime.execution)
    assert await settle_lost_runs(runtime.execution) == []  # settled once, however often it is asked
    await poller.drain()  # the "dead" process finishes late: it must not write over the settlement
    lost, retry = await runs_of(runtime, job.id)
    assert settled == [lost.id]
    assert lost.status == "failed"
    assert lost.error_message == "the process running this job stopped (killed or crashed) before it finished"
    assert (retry.attempt, retry.trigger, retry.status) == (2, "retry", "queued")
    assert retry.not_before == clock() + timedelta(seconds=30)

    clock.advance(seconds=30)
    await fire(poller)
    assert [(r.attempt, r.status) for r in await runs_of(runtime, job.id)] == [(1, "failed"), (2, "succeeded")]


async def test_the_poller_settles_lost_runs_by_itself(runtime, clock, poller):
    job = await runtime.scheduler.create(job_definition())
    clock.set(SLOT)
    # Another process claims and starts the run, then dies without a word.
    async with runtime.sessions.begin() as session:
        await claim_due_slots(session, clock(), limit=10, grace=MISFIRE_GRACE, on_sqlite=runtime.settings.is_sqlite)
    async with runtime.sessions.begin() as session:
        [started] = await take_runnable(
            session, clock(), limit=10, on_sqlite=runtime.settings.is_sqlite, worker="dead:1"
        )
    clock.advance(seconds=LEASE.total_seconds() - 1)
    await fire(poller)
    assert (await runs_of(runtime, job.id))[0].status == "running"  # lease still valid
    clock.advance(seconds=LEASE.total_seconds() / 3 + 1)  # the poller looks for lost runs this often
    await fire(poller)
    [run] = await runs_of(runtime, job.id)
    assert run.status == "failed" and "stopped" in run.error_message
    outcome = await execute_run(runtime.execution, started.id)  # a late executor finds nothing to do
    assert outcome.status == "failed"
