"""Lost connections mid-transaction, constraint races, an unreachable or silent Redis: never a
half-written schedule or run.

``cut_before(engine, n)`` makes the server terminate this process's connection just before the
n-th statement (or COMMIT) of an operation, for every n the operation has: each change must be
all there or not there at all, and the same call made again must then succeed exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.util import await_only

from app.domain.errors import ValidationError
from app.domain.firing import MISFIRE_GRACE, claim_due_slots
from app.domain.outcomes import record_outcomes
from app.domain.starting import prepare_runs, run_target, start_run
from app.persistence.models import AuditEntry, ScheduledJob, ScheduledJobRun
from app.runtime import Runtime
from app.settings import load_settings
from app.strategies.local import LocalScheduler
from tests.support.clock import utc
from tests.support.factories import job_definition
from tests.support.firing import fire, reload, runs_of


@contextlib.contextmanager
def cut_before(engine, at: int | None, seen: list[str] | None = None):
    """Count the statements and COMMITs ``engine`` sends; just before number ``at`` the server
    terminates the connection (``pg_terminate_backend``), as a restart or failover would."""
    count = 0

    def step(conn, label: str) -> None:
        nonlocal count
        if seen is not None:
            seen.append(label)
        if count == at:
            # On the raw asyncpg connection, so the driver adapter's own state stays as it was:
            # the statement (or COMMIT) that follows meets a dead connection, as in real life.
            raw = conn.connection.dbapi_connection._connection
            try:
                await_only(raw.execute("SELECT pg_terminate_backend(pg_backend_pid())"))
            except Exception:
                pass
        count += 1

    def before_statement(conn, cursor, statement, parameters, context, executemany):
        step(conn, " ".join(statement.split()[:3]))

    def before_commit(conn):
        step(conn, "COMMIT")

    event.listen(engine.sync_engine, "before_cursor_execute", before_statement)
    event.listen(engine.sync_engine, "commit", before_commit)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before_statement)
        event.remove(engine.sync_engine, "commit", before_commit)


async def statements_of(runtime, operation) -> list[str]:
    seen: list[str] = []
    with cut_before(runtime.engine, None, seen):
        await operation()
    return seen


async def audit_actions(runtime, job_id: str) -> list[str]:
    async with runtime.sessions() as session:
        return list(
            await session.scalars(
                sa.select(AuditEntry.action).where(AuditEntry.job_id == job_id).order_by(AuditEntry.id)
            )
        )


# ----- schedules ---------------------------------------------------------------------------------


async def test_an_update_cut_at_any_statement_is_all_or_nothing_and_can_be_made_again(runtime):
    change = {"name": "Changed", "schedule_value": "30 10 * * *"}
    probe = await runtime.scheduler.create(job_definition(name="Original", schedule_value="0 9 * * *"))
    steps = await statements_of(runtime, lambda: runtime.scheduler.update(probe.id, change))
    assert "COMMIT" in steps and len(steps) >= 3, steps

    for at, step in enumerate(steps):
        job = await runtime.scheduler.create(job_definition(name="Original", schedule_value="0 9 * * *"))
        with cut_before(runtime.engine, at):
            try:
                await runtime.scheduler.update(job.id, change)
            except Exception:
                # Nothing of it happened: the old definition, its version, its slot, one audit entry.
                stored = await reload(runtime, job.id)
                assert (stored.name, stored.schedule_value, stored.version) == ("Original", "0 9 * * *", 1), step
                assert stored.next_run_at == job.next_run_at, step
                assert await audit_actions(runtime, job.id) == ["create"], step
                # And the same change goes through once the connection is back.
                await runtime.scheduler.update(job.id, change)
            else:
                assert at > steps.index("COMMIT"), f"a cut before {step} went unnoticed"  # after: the NOTIFY
        stored = await reload(runtime, job.id)
        assert (stored.name, stored.schedule_value, stored.version) == ("Changed", "30 10 * * *", 2), step
        assert (stored.next_run_at.hour, stored.next_run_at.minute) == (10, 30)
        assert await audit_actions(runtime, job.id) == ["create", "update"], step


async def test_a_create_cut_at_any_statement_leaves_no_schedule_without_its_audit_entry(runtime):
    steps = await statements_of(runtime, lambda: runtime.scheduler.create(job_definition(id="probe")))
    for at, step in enumerate(steps):
        job_id = f"cut-{at}"
        with cut_before(runtime.engine, at):
            try:
                await runtime.scheduler.create(job_definition(id=job_id))
            except Exception:
                assert not await runtime.scheduler.exists(job_id), step
                assert await audit_actions(runtime, job_id) == [], step
                await runtime.scheduler.create(job_definition(id=job_id))
        assert await runtime.scheduler.exists(job_id), step
        assert await audit_actions(runtime, job_id) == ["create"], step


async def test_a_manual_trigger_cut_at_any_statement_queues_one_run_or_none(runtime):
    job = await runtime.scheduler.create(job_definition())
    steps = await statements_of(runtime, lambda: runtime.scheduler.trigger(job.id))
    for at, step in enumerate(steps):
        await _clear_runs(runtime)
        with cut_before(runtime.engine, at):
            try:
                await runtime.scheduler.trigger(job.id)
            except Exception:
                assert await runs_of(runtime, job.id) == [], step
                continue
        assert [(r.trigger, r.status) for r in await runs_of(runtime, job.id)] == [("manual", "queued")], step


async def _clear_runs(runtime) -> None:
    async with runtime.sessions.begin() as session:
        await session.execute(sa.delete(ScheduledJobRun))


# ----- firing and running ------------------------------------------------------------------------


async def test_a_claim_cut_at_any_statement_claims_every_slot_or_none_and_the_next_claim_makes_up(runtime, clock):
    """Three schedules due after a 10-minute outage: every 5 minutes, every minute (missed rows),
    and ``overlap: skip`` with a run still queued."""

    async def scene(tag: str):
        clock.set(utc(2026, 6, 1, 12, 0))
        five = await runtime.scheduler.create(job_definition(id=f"{tag}-five", schedule_value="*/5 * * * *"))
        late = await runtime.scheduler.create(job_definition(id=f"{tag}-late", schedule_value="* * * * *"))
        busy = await runtime.scheduler.create(
            job_definition(id=f"{tag}-busy", schedule_value="* * * * *", overlap_policy="skip")
        )
        await runtime.scheduler.trigger(busy.id)  # queued: the busy one's slots are skipped
        clock.set(utc(2026, 6, 1, 12, 10, 0, 500_000))
        return [five.id, late.id, busy.id]

    async def claim():
        async with runtime.sessions.begin() as session:
            await claim_due_slots(session, clock(), limit=50, grace=MISFIRE_GRACE, on_sqlite=False)

    clean_ids = await scene("clean")
    steps = await statements_of(runtime, claim)
    clean = {job_id.split("-", 1)[1]: await _claim_state(runtime, job_id) for job_id in clean_ids}
    assert clean["five"][0] == {"missed": 1, "queued": 1}  # 12:05 missed, 12:10 on time
    assert clean["late"][0] == {"missed": 9, "queued": 1}  # 12:01-12:09 missed, 12:10 on time
    assert clean["busy"][0] == {"queued": 1, "missed": 9, "skipped": 1}  # the manual run is still queued

    for at, step in enumerate(steps):
        await _retire(runtime)
        ids = await scene(f"cut{at}")
        before = [await _claim_state(runtime, job_id) for job_id in ids]
        with cut_before(runtime.engine, at):
            with pytest.raises(Exception):  # noqa: B017  (whatever a cut connection raises)
                await claim()
        assert [await _claim_state(runtime, job_id) for job_id in ids] == before, step
        await claim()  # the next round claims it all, once
        after = {job_id.split("-", 1)[1]: await _claim_state(runtime, job_id) for job_id in ids}
        assert after == clean, step


async def _claim_state(runtime, job_id):
    """(runs by status/trigger, next slot, run count) of a schedule."""
    job = await reload(runtime, job_id)
    counts: dict[str, int] = {}
    for run in await runs_of(runtime, job_id):
        key = run.trigger if run.trigger == "catch_up" else run.status
        counts[key] = counts.get(key, 0) + 1
    return counts, job.next_run_at, job.run_count


async def _retire(runtime):
    async with runtime.sessions.begin() as session:
        await session.execute(sa.update(ScheduledJob).values(is_enabled=False, next_run_at=None))


async def test_starting_runs_cut_at_any_statement_starts_each_once_or_not_at_all(runtime, clock):
    job = await runtime.scheduler.create(job_definition(schedule_value="* * * * *"))
    poller = LocalScheduler(runtime)
    clock.set(job.next_run_at)
    steps = await statements_of(runtime, lambda: fire(poller))
    for at, step in enumerate(steps):
        clock.advance(minutes=1)
        with cut_before(runtime.engine, at):
            try:
                await fire(poller)
            except Exception:
                pass
        await fire(poller)  # the next round picks up whatever the cut round left
        runs = await runs_of(runtime, job.id)
        assert [r.scheduled_for for r in runs] == sorted({r.scheduled_for for r in runs}), step
        assert runs[-1].scheduled_for == clock().replace(second=0, microsecond=0), step
        assert {r.status for r in runs} <= {"succeeded", "running"}, (step, [r.status for r in runs])
        # A run left "running" by a cut is held by this live poller's lease, not lost.
        assert all(r.status == "succeeded" or r.id in poller._running or r.lease_expires_at > clock() for r in runs), (
            step
        )


async def test_a_worker_starting_a_run_over_a_cut_connection_starts_it_once(runtime):
    """A worker's ``queued -> running`` is tried again when the connection goes: the run neither
    stays queued (the message is acknowledged after the run) nor is started twice."""
    job = await runtime.scheduler.create(job_definition())
    probe = await runtime.scheduler.trigger(job.id)
    steps = await statements_of(runtime, lambda: start_run(runtime.execution, probe.id, worker="probe"))
    for at, step in enumerate(steps):
        run = await runtime.scheduler.trigger(job.id)
        with cut_before(runtime.engine, at):
            assert await start_run(runtime.execution, run.id, worker="worker-1"), step
        [row] = [r for r in await runs_of(runtime, job.id) if r.id == run.id]
        assert (row.status, row.queue_job_id) == ("running", "worker-1"), step
        assert not await start_run(runtime.execution, run.id, worker="worker-2"), step  # a redelivered message


async def test_an_outcome_whose_connection_is_cut_while_being_written_is_written_on_retry(runtime, clock):
    """The target has run; losing the connection while recording that must not leave the run
    "running" until its lease runs out (then it would be settled as failed, and retried)."""
    failing = await runtime.scheduler.create(job_definition(target_payload={"fail": "boom"}, max_retries=1))
    fine = await runtime.scheduler.create(job_definition(target_payload={"message": "ok"}))

    async def run_once(job, cut_at):
        run = await runtime.scheduler.trigger(job.id)
        assert await start_run(runtime.execution, run.id, worker="test")
        async with runtime.sessions.begin() as session:
            [prepared] = await prepare_runs(runtime.execution, session, [run.id])
        finish = await run_target(runtime.execution, prepared)
        seen: list[str] = []
        with cut_before(runtime.engine, cut_at, seen):
            [outcome] = await record_outcomes(runtime.execution, [(prepared.run, prepared.job, finish)])
        return run.id, outcome, seen

    _, _, steps = await run_once(fine, None)
    for at, step in enumerate(steps):
        for job, status in ((fine, "succeeded"), (failing, "failed")):
            run_id, outcome, seen = await run_once(job, at)
            assert outcome.status == status, step
            rows = {r.id: r for r in await runs_of(runtime, job.id)}
            assert rows[run_id].status == status and rows[run_id].finished_at is not None, step
            assert (await reload(runtime, job.id)).last_status == status, step
    retries = [r for r in await runs_of(runtime, failing.id) if r.trigger == "retry"]
    # Exactly one retry per failed run, however many times its outcome had to be written.
    assert len(retries) == len(steps), [r.reason for r in retries]


# ----- constraint races --------------------------------------------------------------------------


async def test_two_creates_of_the_same_id_at_once_make_one_schedule_and_one_clear_error(runtime):
    for attempt in range(5):
        job_id = f"race-{attempt}"
        results = await asyncio.gather(
            *(runtime.scheduler.create(job_definition(id=job_id, name=f"copy {i}")) for i in range(2)),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1, results
        # "already exists" when the loser reads the winner's row, "not available" when it meets
        # it only at the insert (its scope unread).
        message = errors[0].errors["id"] if isinstance(errors[0], ValidationError) else ""
        assert "already exists" in message or "is not available" in message, repr(errors[0])
        assert await audit_actions(runtime, job_id) == ["create"]


async def test_modules_registering_the_same_schedule_at_once_all_succeed(runtime):
    """Every process of a module registers its schedules at start, at the same moment."""
    for attempt in range(5):
        job_id = f"module:race-{attempt}"
        registration = {**job_definition(), "id": job_id, "source_module": "module"}
        results = await asyncio.gather(
            *(runtime.scheduler.register(registration) for _ in range(3)), return_exceptions=True
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        assert await audit_actions(runtime, job_id) == ["create"]


# ----- Redis unreachable or silent (async strategy) ----------------------------------------------


@contextlib.asynccontextmanager
async def silent_redis():
    """A TCP server that accepts connections and never answers: a hung or partitioned Redis."""
    held = []

    async def swallow(reader, writer):
        held.append(writer)
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    finally:
        for writer in held:
            writer.close()
        server.close()


@pytest.mark.parametrize("redis", ["refused", pytest.param("silent", marks=pytest.mark.slow)])
async def test_a_change_commits_and_returns_when_redis_is_down_and_reconcile_repairs_redis(pg_url, clock, redis):
    """The database is the truth: a change commits whatever Redis does, the request returns
    (a silent Redis costs its 5 s socket timeout, no more), and a reconcile brings Redis along."""
    from redis.asyncio import Redis as RedisClient

    from app.strategies.taskiq_store import ScheduleStore
    from app.strategies.taskiq_sync import SENDING, reconcile_all
    from tests.support.redis_databases import FAULTS_REDIS

    env = {"DATABASE_URL": pg_url, "QUEUE_STRATEGY": "async", "DATABASE_POOL_SIZE": "2"}
    healthy = Runtime.create(load_settings({**env, "REDIS_URL": FAULTS_REDIS}), clock=clock)
    job = await healthy.scheduler.create(job_definition(name="made while Redis was up"))
    async with silent_redis() as silent:
        down = Runtime.create(
            load_settings({**env, "REDIS_URL": "redis://127.0.0.1:1/0" if redis == "refused" else silent}), clock=clock
        )
        try:
            started = time.monotonic()
            changed = await down.scheduler.update(job.id, {"schedule_value": "*/10 * * * *"})
            if redis == "refused":
                run = await down.scheduler.trigger(job.id)
            assert time.monotonic() - started < 8, "a silent Redis must not hang the request"
        finally:
            await down.close()
    client = RedisClient.from_url(FAULTS_REDIS)
    try:
        stored = await reload(healthy, job.id)
        assert (stored.version, stored.schedule_value) == (2, "*/10 * * * *")
        assert await audit_actions(healthy, job.id) == ["create", "update"]
        if redis == "refused":
            # Queued, and marked as not yet on a stream: a scheduler sends it after SEND_GRACE.
            [queued] = await runs_of(healthy, job.id)
            assert (queued.id, queued.status, queued.queue_job_id.startswith(SENDING)) == (run.id, "queued", True)
        # Redis still holds the old slot; a reconcile (every scheduler runs one each 30 s) repairs it.
        store = ScheduleStore(client)
        await reconcile_all(healthy, store)
        scores, _ = await store.snapshot()
        assert scores[job.id] == changed.next_run_at.timestamp()
    finally:
        await client.flushdb()
        await client.aclose()
        await healthy.close()


async def test_an_outcome_whose_transaction_is_chosen_as_a_deadlock_victim_is_written_on_retry(runtime, clock):
    """Recording runs locks their schedules in id order; anything locking them in another order
    (a bulk change, a script) can deadlock with it. PostgreSQL then aborts one of the two: if that
    is the outcome's transaction, it is written again rather than lost."""
    job = await runtime.scheduler.create(job_definition())
    run = await runtime.scheduler.trigger(job.id)
    assert await start_run(runtime.execution, run.id, worker="test")
    async with runtime.sessions.begin() as session:
        [prepared] = await prepare_runs(runtime.execution, session, [run.id])
    finish = await run_target(runtime.execution, prepared)
    victims = 1

    def deadlock_once(conn, cursor, statement, parameters, context, executemany):
        nonlocal victims
        if victims and statement.startswith("UPDATE scheduled_jobs") and "SET last_run_at" in statement:
            victims -= 1
            raw = conn.connection.dbapi_connection._connection
            try:  # what PostgreSQL raises on the victim: SQLSTATE 40P01, here on request
                await_only(
                    raw.execute("DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$")
                )
            except Exception as error:
                raise sa.exc.DBAPIError(statement, parameters, error) from error

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", deadlock_once)
    try:
        [outcome] = await record_outcomes(runtime.execution, [(prepared.run, prepared.job, finish)])
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", deadlock_once)
    assert victims == 0 and outcome.status == "succeeded"
    [row] = await runs_of(runtime, job.id)
    assert (row.status, (await reload(runtime, job.id)).last_status) == ("succeeded", "succeeded")
