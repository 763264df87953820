"""Cancelling runs and running with input, in the domain, on both backends.

A queued run cancelled never starts, whoever races to start it; a running run's target gets
``CancelledError`` from the process running it within 2 s and the run ends ``cancelled``, never
retried; a finished run cannot be cancelled. A manual run records the payload it runs with (the
input given, checked like a schedule's payload) and its target gets exactly that.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from app.domain import events
from app.domain.actors import ALL_FEATURES, Actor
from app.domain.errors import Conflict, Forbidden, NotFound, ValidationError
from app.domain.execution import LEASE
from app.domain.outcomes import settle_lost_runs
from app.domain.starting import start_run, start_runs
from app.persistence.models import ScheduledJobRun
from app.strategies.local import LocalScheduler
from tests.support.clock import utc
from tests.support.factories import NIGHTLY_EXPORT, job_definition
from tests.support.firing import fire, reload, runs_of

OPS = Actor(id="u1", label="ops@example.com", features=ALL_FEATURES, is_superadmin=True)
ACME_VIEWER = Actor(
    id="u2",
    label="viewer@acme.test",
    tenant_id="acme",
    organization_id="acme-eu",
    features=frozenset({"scheduler.jobs.view"}),
)
GLOBEX = Actor(
    id="u3", label="owner@globex.test", tenant_id="globex", organization_id="globex-us", features=ALL_FEATURES
)


@pytest.fixture
def poller(runtime):
    return LocalScheduler(runtime)


@pytest.fixture
def published(runtime):
    seen: list[events.RunEvent] = []

    async def record(event):
        seen.append(event)

    unsubscribe = runtime.events.subscribe("*", record)
    yield seen
    unsubscribe()


async def _run(runtime, run_id: str) -> ScheduledJobRun:
    async with runtime.sessions() as session:
        return await session.get(ScheduledJobRun, run_id)


async def _wait_for(check, timeout: float = 10.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(every)
    return result


# ----- queued ------------------------------------------------------------------------------------


async def test_a_queued_run_cancelled_never_starts_and_says_who_cancelled_it(runtime, clock, poller, published):
    job = await runtime.scheduler.create(job_definition(max_retries=3))
    run = await runtime.scheduler.trigger(job.id, OPS)
    clock.advance(seconds=5)

    outcome = await runtime.scheduler.cancel_run(run.id, OPS)
    assert outcome.stopped and outcome.run.status == "cancelled"
    assert await fire(poller) == 0
    assert await start_run(runtime.execution, run.id, worker="late:1") is False
    [cancelled] = await runs_of(runtime, job.id)  # and no retry
    assert (cancelled.status, cancelled.cancelled_by, cancelled.started_at) == ("cancelled", "ops@example.com", None)
    assert cancelled.cancel_requested_at == cancelled.finished_at == clock()
    assert cancelled.reason == "cancelled by ops@example.com before it started"
    [event] = published
    assert (event.name, event.run_id, event.status, event.finished_at) == (
        events.CANCELLED,
        run.id,
        "cancelled",
        clock(),
    )
    assert (await reload(runtime, job.id)).last_status is None  # it never ran


async def test_cancel_and_start_racing_for_queued_runs_never_both_win(runtime, clock):
    job = await runtime.scheduler.create(job_definition())
    runs = [await runtime.scheduler.trigger(job.id) for _ in range(20)]

    async def cancel(run_id):
        return (await runtime.scheduler.cancel_run(run_id)).stopped

    cancels = [asyncio.create_task(cancel(run.id)) for run in runs]
    started = await start_runs(runtime.execution, [run.id for run in runs], worker="racer:1")
    stopped = await asyncio.gather(*cancels)
    for run, start, stop in zip(runs, started, stopped):
        row = await _run(runtime, run.id)
        assert (start is None) == stop, "exactly one of them took the queued run"
        if stop:
            assert (row.status, row.started_at) == ("cancelled", None)
        else:  # started first: the cancel became a request to the process running it
            assert (row.status, row.cancelled_by) == ("running", "system") and row.cancel_requested_at


# ----- running -----------------------------------------------------------------------------------


async def test_a_running_run_is_cancelled_within_two_seconds_and_never_retried(runtime, clock, poller, published):
    job = await runtime.scheduler.create(job_definition(max_retries=3, retry_backoff_seconds=1))
    serving = asyncio.create_task(poller.run())
    try:
        run = await runtime.scheduler.trigger(job.id, OPS, {"sleep": 30})
        await _wait_for(lambda: _started(runtime, run.id))
        asked = time.monotonic()
        outcome = await runtime.scheduler.cancel_run(run.id, OPS)
        assert not outcome.stopped and (outcome.run.status, outcome.run.cancelled_by) == ("running", "ops@example.com")
        done = await _wait_for(lambda: _ended(runtime, run.id), timeout=5)
        took = time.monotonic() - asked
    finally:
        poller.stop()
        await serving
    assert took < 2.0, f"cancelled after {took:.2f} s"
    assert (done.status, done.reason) == ("cancelled", "cancelled by ops@example.com")
    assert done.duration_ms < 5_000 and done.error_message is None
    assert [r.id for r in await runs_of(runtime, job.id)] == [run.id], "a cancelled run is not retried"
    assert [e.name for e in published] == [events.STARTED, events.CANCELLED]
    assert (await reload(runtime, job.id)).last_status == "cancelled"
    print(f"\nrunning run cancelled {took * 1000:.0f} ms after the request")


async def _started(runtime, run_id):
    return (await _run(runtime, run_id)).status == "running"


async def _ended(runtime, run_id):
    row = await _run(runtime, run_id)
    return row if row.finished_at else None


async def test_asking_twice_keeps_the_first_request_and_a_finished_run_is_a_conflict(runtime, clock, poller):
    job = await runtime.scheduler.create(job_definition())
    run = await runtime.scheduler.trigger(job.id)
    assert await start_run(runtime.execution, run.id, worker="elsewhere:1")
    first = await runtime.scheduler.cancel_run(run.id, OPS)
    clock.advance(seconds=3)
    again = await runtime.scheduler.cancel_run(
        run.id, Actor(id=None, label="second", features=ALL_FEATURES, is_superadmin=True)
    )
    assert (again.run.cancelled_by, again.run.cancel_requested_at) == ("ops@example.com", first.run.cancel_requested_at)

    done = await runtime.scheduler.trigger(job.id)
    await fire(poller)
    with pytest.raises(Conflict, match=r"has already finished \(succeeded\)"):
        await runtime.scheduler.cancel_run(done.id, OPS)
    cancelled = await runtime.scheduler.trigger(job.id)
    await runtime.scheduler.cancel_run(cancelled.id)
    with pytest.raises(Conflict, match=r"already finished \(cancelled\)"):
        await runtime.scheduler.cancel_run(cancelled.id)


async def test_only_callers_who_may_trigger_the_schedule_cancel_and_others_do_not_see_the_run(runtime, clock):
    job = await runtime.scheduler.create(job_definition(NIGHTLY_EXPORT))
    run = await runtime.scheduler.trigger(job.id)
    with pytest.raises(Forbidden):
        await runtime.scheduler.cancel_run(run.id, ACME_VIEWER)
    for unknown in (run.id, "no-such-run", "x" * 300):
        with pytest.raises(NotFound):
            await runtime.scheduler.cancel_run(unknown, GLOBEX)
    await runtime.scheduler.delete(job.id)
    with pytest.raises(NotFound):
        await runtime.scheduler.cancel_run(run.id, GLOBEX)
    assert (await _run(runtime, run.id)).status == "queued"


async def test_a_run_whose_process_died_after_a_cancel_request_is_settled_cancelled(runtime, clock):
    job = await runtime.scheduler.create(job_definition(max_retries=2))
    run = await runtime.scheduler.trigger(job.id)
    assert await start_run(runtime.execution, run.id, worker="dead:1")
    await runtime.scheduler.cancel_run(run.id, OPS)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await settle_lost_runs(runtime.execution) == [run.id]
    [settled] = await runs_of(runtime, job.id)
    assert settled.status == "cancelled" and settled.reason.startswith("cancelled by ops@example.com; the process")


async def test_a_target_that_ignores_the_cancellation_still_ends_cancelled(runtime, clock, poller):
    @runtime.registry.command("tests.stubborn", label="Stubborn", schedulable=True)
    async def stubborn(payload, ctx):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # a target that carries on
        await asyncio.sleep(0.2)
        return {"finished": True}

    try:
        job = await runtime.scheduler.create(job_definition(target_command="tests.stubborn", target_payload={}))
        serving = asyncio.create_task(poller.run())
        try:
            run = await runtime.scheduler.trigger(job.id)
            await _wait_for(lambda: _started(runtime, run.id))
            await runtime.scheduler.cancel_run(run.id)
            done = await _wait_for(lambda: _ended(runtime, run.id), timeout=5)
        finally:
            poller.stop()
            await serving
    finally:
        runtime.registry._targets.pop(("command", "tests.stubborn"))
    assert done.status == "cancelled" and done.result == {"finished": True}
    assert done.reason == "cancelled by system; the target did not stop at once and ended on its own"


# ----- input -------------------------------------------------------------------------------------


async def test_a_manual_run_records_and_gets_its_input_or_the_schedules_payload(runtime, clock, poller):
    job = await runtime.scheduler.create(job_definition(target_payload={"message": "from the schedule"}))
    with_input = await runtime.scheduler.trigger(job.id, OPS, {"message": "given", "n": [1, 2]})
    plain = await runtime.scheduler.trigger(job.id, OPS)
    await runtime.scheduler.update(job.id, {"target_payload": {"message": "changed after the trigger"}})
    clock.set(utc(2026, 6, 1, 12, 5))
    await fire(poller)
    runs = {r.id: r for r in await runs_of(runtime, job.id)}
    assert runs[with_input.id].payload == {"message": "given", "n": [1, 2]}
    assert runs[with_input.id].result["echo"] == {"message": "given", "n": [1, 2]}
    assert runs[plain.id].payload == {"message": "from the schedule"}
    assert runs[plain.id].result["echo"] == {"message": "from the schedule"}
    [scheduled] = [r for r in runs.values() if r.trigger == "scheduled"]
    assert scheduled.payload is None and scheduled.result["echo"] == {"message": "changed after the trigger"}


async def test_a_retry_of_a_run_with_input_gets_the_same_input(runtime, clock, poller):
    job = await runtime.scheduler.create(job_definition(max_retries=1, retry_backoff_seconds=1))
    await runtime.scheduler.trigger(job.id, OPS, {"fail": "bad input"})
    await fire(poller)
    first, retry = await runs_of(runtime, job.id)
    assert first.status == "failed" and retry.payload == {"fail": "bad input"}
    clock.advance(seconds=1)
    await fire(poller)
    assert (await runs_of(runtime, job.id))[1].error_message == "RuntimeError: bad input"


@pytest.mark.parametrize(
    "payload, message",
    [
        ([1, 2], "payload must be a JSON object"),
        ("not json", "payload is not valid JSON"),
        ({"blob": "x" * 70_000}, "the limit is 65,536"),
        ({"k": "a\x00b"}, "NUL"),
    ],
)
async def test_input_is_checked_like_a_schedules_payload(runtime, clock, payload, message):
    job = await runtime.scheduler.create(job_definition())
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.trigger(job.id, OPS, payload)
    assert list(raised.value.errors) == ["payload"] and message in raised.value.errors["payload"]
    assert await runs_of(runtime, job.id) == []


async def test_input_is_checked_only_for_callers_who_may_trigger(runtime, clock):
    job = await runtime.scheduler.create(job_definition(NIGHTLY_EXPORT))
    with pytest.raises(Forbidden):
        await runtime.scheduler.trigger(job.id, ACME_VIEWER, "not json")
    with pytest.raises(NotFound):
        await runtime.scheduler.trigger(job.id, GLOBEX, "not json")
    async with runtime.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(ScheduledJobRun)) == 0
