"""Heartbeats and the health verdict: rows written, stops marked, live or lost by the clock,
old rows pruned, a database outage survived; what is missing per strategy, and overdue work
seen only within the caller's scope."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.domain import health
from app.domain.actors import ALL_FEATURES, SYSTEM, Actor
from app.domain.health import ProblemCode
from app.domain.heartbeats import Heartbeat, ProcessKind, ProcessState, process_listing, processes
from app.domain.ids import new_id
from app.persistence.models import ScheduledJob, ScheduledJobRun, SchedulerProcess
from app.runtime import Runtime
from tests.support.factories import DAILY_SALES_REPORT, job_definition

ACME_ADMIN = Actor(id="u1", label="owner@acme", tenant_id="acme", organization_id="acme-eu", features=ALL_FEATURES)
GLOBEX_ADMIN = Actor(id="u2", label="globex", tenant_id="globex", organization_id="globex-us", features=ALL_FEATURES)


async def rows(runtime) -> list[SchedulerProcess]:
    async with runtime.sessions() as session:
        return list(await session.scalars(sa.select(SchedulerProcess).order_by(SchedulerProcess.started_at)))


async def test_a_heartbeat_writes_its_row_at_start_and_marks_it_stopped_at_a_clean_stop(runtime, clock):
    in_flight = 3
    beat = Heartbeat(runtime, ProcessKind.WORKER, lambda: in_flight)
    await beat.start()
    [row] = await rows(runtime)
    assert (row.kind, row.strategy, row.runs_in_flight, row.stopped_at) == ("worker", "local", 3, None)
    assert row.started_at == row.last_seen_at == clock()
    assert row.pid > 0 and row.host and row.version

    clock.advance(seconds=25)
    await beat.stop()
    [row] = await rows(runtime)
    assert row.stopped_at == row.last_seen_at == clock()
    assert row.runs_in_flight == 0
    assert [view.state for view in await processes(runtime)] == [ProcessState.STOPPED]


async def test_it_beats_every_interval_with_the_runs_in_flight_of_the_moment(runtime, clock):
    fast = replace(runtime, settings=replace(runtime.settings, scheduler_heartbeat_seconds=1))
    in_flight = [0]
    beat = Heartbeat(fast, ProcessKind.POLLER, lambda: in_flight[0])
    await beat.start()
    try:
        in_flight[0] = 7
        clock.advance(seconds=1)
        await asyncio.sleep(1.3)
        [row] = await rows(runtime)
        assert (row.last_seen_at, row.runs_in_flight) == (clock(), 7)
    finally:
        await beat.stop()


async def test_a_process_is_live_within_three_beats_and_lost_after(runtime, clock):
    beat = Heartbeat(runtime, ProcessKind.EMBEDDED)
    await beat.start()
    try:
        clock.advance(seconds=30)  # three beats of 10 s: still live
        assert [v.state for v in await processes(runtime)] == [ProcessState.LIVE]
        assert (await health.assess(runtime, SYSTEM)).live[ProcessKind.EMBEDDED] == 1
        clock.advance(seconds=1)
        assert [v.state for v in await processes(runtime)] == [ProcessState.LOST]
        assert (await health.assess(runtime, SYSTEM)).live[ProcessKind.EMBEDDED] == 0
    finally:
        await beat.stop()


async def test_rows_not_heard_from_for_a_day_are_pruned_and_an_hour_old_ones_not_listed(runtime, clock):
    async with runtime.sessions.begin() as session:
        for age in (timedelta(hours=2), timedelta(hours=25)):
            seen = clock() - age
            session.add(
                SchedulerProcess(
                    id=new_id(),
                    kind="worker",
                    host="old-host",
                    pid=1,
                    version="0.0.1",
                    strategy="async",
                    started_at=seen,
                    last_seen_at=seen,
                    runs_in_flight=0,
                )
            )
    assert await processes(runtime) == []  # neither was heard from in the last hour
    beat = Heartbeat(runtime, ProcessKind.POLLER)
    await beat.start()  # the first beat prunes
    await beat.stop()
    ages = sorted(clock() - row.last_seen_at for row in await rows(runtime))
    assert ages == [timedelta(0), timedelta(hours=2)]


async def test_a_database_outage_is_logged_not_raised_and_the_row_comes_back(runtime, clock, caplog):
    fast = replace(runtime, settings=replace(runtime.settings, scheduler_heartbeat_seconds=1))
    beat = Heartbeat(fast, ProcessKind.POLLER)

    def refuse(*_args, **_kwargs):
        raise OSError("connection refused (the database is restarting)")

    await runtime.engine.dispose()  # no pooled connection survives the outage
    event.listen(runtime.engine.sync_engine, "do_connect", refuse)
    try:
        with caplog.at_level(logging.WARNING, logger="mercato.heartbeat"):
            await beat.start()  # does not raise
            await asyncio.sleep(1.2)  # a second failed beat: not logged twice
        assert [r.getMessage() for r in caplog.records if r.name == "mercato.heartbeat"] == [
            "heartbeat not written (OSError): connection refused (the database is restarting)"
        ]
    finally:
        event.remove(runtime.engine.sync_engine, "do_connect", refuse)
    clock.advance(seconds=2)
    await asyncio.sleep(1.2)
    [row] = await rows(runtime)
    assert row.last_seen_at == clock()
    await beat.stop()


# ----- the health verdict ----------------------------------------------------------------------


async def beating(runtime, *kinds: ProcessKind) -> list[Heartbeat]:
    beats = [Heartbeat(runtime, kind) for kind in kinds]
    for beat in beats:
        await beat.start()
    return beats


@pytest.mark.parametrize(
    "strategy, kinds, missing",
    [
        ("local", (), [ProblemCode.NO_POLLER]),
        ("local", (ProcessKind.EMBEDDED,), []),
        ("local", (ProcessKind.POLLER,), []),
        ("local", (ProcessKind.WORKER, ProcessKind.ASYNC_SCHEDULER), [ProblemCode.NO_POLLER]),
        ("async", (), [ProblemCode.NO_ASYNC_SCHEDULER, ProblemCode.NO_WORKER]),
        ("async", (ProcessKind.ASYNC_SCHEDULER,), [ProblemCode.NO_WORKER]),
        ("async", (ProcessKind.WORKER,), [ProblemCode.NO_ASYNC_SCHEDULER]),
        ("async", (ProcessKind.WORKER, ProcessKind.ASYNC_SCHEDULER), []),
        ("async", (ProcessKind.POLLER,), [ProblemCode.NO_ASYNC_SCHEDULER, ProblemCode.NO_WORKER]),
    ],
)
async def test_what_is_missing_depends_on_the_strategy(runtime, strategy, kinds, missing):
    configured = replace(runtime, settings=replace(runtime.settings, queue_strategy=strategy))
    beats = await beating(configured, *kinds)
    try:
        verdict = await health.assess(configured, SYSTEM)
        assert [p.code for p in verdict.problems] == missing
        assert verdict.healthy == (missing == [])
    finally:
        for beat in beats:
            await beat.stop()


async def test_the_fix_names_the_exact_command(runtime):
    configured = replace(runtime, settings=replace(runtime.settings, queue_strategy="async"))
    problems = (await health.assess(configured, SYSTEM)).problems
    assert [p.command for p in problems] == ["mercato worker scheduler", "mercato worker start"]
    assert (await health.assess(runtime, SYSTEM)).problems[0].command == "mercato scheduler start"


async def test_a_stopped_process_does_not_count_as_firing(runtime):
    [beat] = await beating(runtime, ProcessKind.POLLER)
    await beat.stop()
    assert [p.code for p in (await health.assess(runtime, SYSTEM)).problems] == [ProblemCode.NO_POLLER]


async def overdue_schedule(runtime, clock, *, minutes: int, **definition) -> str:
    job = await runtime.scheduler.create(job_definition(DAILY_SALES_REPORT, **definition))
    async with runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.id == job.id)
            .values(next_run_at=clock() - timedelta(minutes=minutes))
        )
    return job.id


async def test_slots_due_longer_than_the_threshold_are_reported_even_with_a_poller_alive(runtime, clock):
    [beat] = await beating(runtime, ProcessKind.POLLER)
    try:
        await overdue_schedule(runtime, clock, minutes=1, id="acme:fresh")  # within 2 minutes: fine
        assert (await health.assess(runtime, SYSTEM)).healthy
        await overdue_schedule(runtime, clock, minutes=5, id="acme:stuck")
        [problem] = (await health.assess(runtime, SYSTEM)).problems
        assert problem.code == ProblemCode.SLOTS_OVERDUE
        assert problem.since == clock() - timedelta(minutes=5)
        assert problem.message == "Schedules are due for more than 2 minutes and no scheduler has fired them."
    finally:
        await beat.stop()


async def test_queued_runs_whose_time_came_long_ago_are_reported(runtime, clock):
    [beat] = await beating(runtime, ProcessKind.POLLER)
    try:
        job_id = await overdue_schedule(runtime, clock, minutes=0, id="acme:queued")
        run = await runtime.scheduler.trigger(job_id)
        assert (await health.assess(runtime, SYSTEM)).healthy
        clock.advance(minutes=3)
        problems = (await health.assess(runtime, SYSTEM)).problems
        assert [(p.code, p.since) for p in problems if p.code == ProblemCode.RUNS_OVERDUE] == [
            (ProblemCode.RUNS_OVERDUE, run.not_before)
        ]
    finally:
        await beat.stop()


async def test_overdue_work_of_another_scope_is_not_reported_to_a_tenant(runtime, clock):
    [beat] = await beating(runtime, ProcessKind.POLLER)
    try:
        await overdue_schedule(runtime, clock, minutes=10, id="acme:stuck")
        acme = await health.assess(runtime, ACME_ADMIN)
        globex = await health.assess(runtime, GLOBEX_ADMIN)
        assert [p.code for p in acme.problems] == [ProblemCode.SLOTS_OVERDUE]
        assert globex.healthy
    finally:
        await beat.stop()


async def test_a_tenant_sees_kinds_and_states_but_not_hosts_and_counts_only_their_runs(runtime, clock):
    [beat] = await beating(runtime, ProcessKind.WORKER)
    try:
        async with runtime.sessions.begin() as session:
            for tenant, organization in (("acme", "acme-eu"), ("globex", "globex-us"), ("globex", "globex-us")):
                session.add(
                    ScheduledJobRun(
                        id=new_id(),
                        job_id=f"{tenant}:job",
                        tenant_id=tenant,
                        organization_id=organization,
                        scheduled_for=clock(),
                        trigger="manual",
                        status="running",
                        attempt=1,
                        created_at=clock(),
                    )
                )
        acme = await process_listing(runtime, ACME_ADMIN)
        root = await process_listing(runtime, SYSTEM)
        assert (acme.runs_in_flight, root.runs_in_flight) == (1, 3)
        [seen] = acme.processes
        assert (seen.kind, seen.state, seen.host, seen.pid, seen.version, seen.runs_in_flight) == (
            "worker",
            ProcessState.LIVE,
            None,
            None,
            None,
            None,
        )
        assert root.processes[0].host and root.processes[0].pid
        assert acme.live[ProcessKind.WORKER] == 1 and not acme.details and root.details
    finally:
        await beat.stop()


async def test_a_second_runtime_sees_the_first_ones_processes(runtime):
    """The rows are the truth, whichever process reads them."""
    other = Runtime.create(runtime.settings, clock=runtime.clock)
    [beat] = await beating(runtime, ProcessKind.ASYNC_SCHEDULER)
    try:
        assert [v.kind for v in await processes(other)] == ["async-scheduler"]
    finally:
        await beat.stop()
        await other.close()
