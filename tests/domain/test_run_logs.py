"""Run logs: what a target writes through ``ctx.log`` is kept with its run, capped, read after a
cursor within the reader's scope, written live while it runs, and deleted with the run."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import pytest
import sqlalchemy as sa

from app.domain.actors import ALL_FEATURES, Actor
from app.domain.errors import NotFound, ValidationError
from app.domain.history import delete_expired_runs
from app.domain.run_log_reads import read_run_log
from app.persistence.models import ScheduledJobRun, ScheduledJobRunLog
from app.runtime import Runtime
from app.strategies.local import LocalScheduler
from tests.support.clock import utc
from tests.support.factories import ACME_EU, job_definition
from tests.support.firing import fire, runs_of

SLOT = utc(2026, 6, 1, 12, 5)
ACME_ADMIN = Actor("u1", "admin@acme", "acme", "acme-eu", ALL_FEATURES)
GLOBEX_ADMIN = Actor("u2", "admin@globex", "globex", "globex-us", ALL_FEATURES)


@pytest.fixture
def targets(runtime):
    """Test targets that log, registered for the test only."""
    registry = runtime.registry
    names = []

    def command(name):
        names.append(name)
        return registry.command(name, label=name, schedulable=True)

    @command("tests.chatty")
    async def chatty(payload, ctx):
        ctx.log.debug("not kept at the default level")
        ctx.log.info("fetching %d pages", payload.get("pages", 3))
        for page in range(payload.get("pages", 3)):
            ctx.log.info("page %d <b>done</b>", page + 1)
        try:
            raise KeyError("sku-42")
        except KeyError:
            ctx.log.exception("one item failed")
        ctx.log.warning("nul \x00 and a %s", "x" * 300)
        return None

    @command("tests.threaded")
    async def threaded(payload, ctx):
        ctx.log.info("before")
        await asyncio.to_thread(ctx.log.info, "from a thread of the target's")
        ctx.log.info("after")

    @command("tests.own-handler")
    async def own_handler(payload, ctx):
        handler = logging.Handler()
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s %(threadName)s %(processName)s %(process)d "
            "%(filename)s:%(lineno)d %(funcName)s %(module)s %(relativeCreated)d %(msecs)d %(message)s"
        )
        seen = []
        handler.emit = lambda record: seen.append(formatter.format(record))
        ctx.log.addHandler(handler)
        ctx.log.info("%(what)s for %(whom)s", {"what": "a mapping", "whom": "the target"})
        ctx.log.info("with extra", extra={"sku": "sku-1"})
        return seen

    @command("tests.formats")
    async def formats(payload, ctx):
        ctx.log.info("%(sku)s: %(count)d left", {"sku": "sku-9", "count": 3})
        ctx.log.info("100%% done")
        ctx.log.warning(RuntimeError("an object, not a string"))
        ctx.log.error("two placeholders %s %s", "one argument")
        ctx.log.log(logging.INFO, "through log(%s)", "level")
        ctx.log.setLevel(logging.DEBUG)
        ctx.log.debug("debug once asked for")

    @command("tests.silent")
    async def silent(payload, ctx):
        return None

    yield
    for name in names:
        registry._targets.pop(("command", name))


async def _run_once(runtime, clock, **overrides):
    job = await runtime.scheduler.create(job_definition(ACME_EU, **overrides))
    clock.set(SLOT)
    await runtime.scheduler.trigger(job.id)
    await fire(LocalScheduler(runtime))
    [run] = await runs_of(runtime, job.id)
    return run


async def _lines(runtime, run_id):
    async with runtime.sessions() as session:
        return list(
            await session.scalars(
                sa.select(ScheduledJobRunLog)
                .where(ScheduledJobRunLog.run_id == run_id)
                .order_by(ScheduledJobRunLog.seq)
            )
        )


async def test_the_lines_a_target_logs_are_kept_with_their_level_time_and_scope(runtime, clock, targets):
    run = await _run_once(runtime, clock, target_command="tests.chatty", target_payload={"pages": 2})
    lines = await _lines(runtime, run.id)
    assert [(line.seq, line.level) for line in lines] == [
        (1, "INFO"),
        (2, "INFO"),
        (3, "INFO"),
        (4, "ERROR"),
        (5, "WARNING"),
    ]
    assert [line.message for line in lines[:3]] == ["fetching 2 pages", "page 1 <b>done</b>", "page 2 <b>done</b>"]
    assert lines[3].message.startswith("one item failed\nTraceback (most recent call last)")
    assert "KeyError: 'sku-42'" in lines[3].message
    assert lines[4].message.startswith("nul \ufffd and a xxx")
    assert {line.logged_at for line in lines} == {SLOT}  # the execution's clock
    assert {(line.tenant_id, line.organization_id) for line in lines} == {("acme", "acme-eu")}


async def test_lines_logged_from_a_thread_of_the_target_are_kept_in_order(runtime, clock, targets):
    run = await _run_once(runtime, clock, target_command="tests.threaded")
    assert [line.message for line in await _lines(runtime, run.id)] == [
        "before",
        "from a thread of the target's",
        "after",
    ]


async def test_a_targets_own_handler_on_ctx_log_gets_complete_records(runtime, clock, targets):
    run = await _run_once(runtime, clock, target_command="tests.own-handler")
    assert run.status == "succeeded", run.error_stack
    first, second = run.result
    assert "(unknown file):0 (unknown function) Unknown module" in first
    assert first.endswith("a mapping for the target")
    assert "MainThread" in first and f"mercato.run.{run.id}" in first
    assert second.endswith("with extra")
    assert [line.message for line in await _lines(runtime, run.id)] == ["a mapping for the target", "with extra"]


async def test_messages_are_formatted_as_the_logging_module_formats_them(runtime, clock, targets):
    run = await _run_once(runtime, clock, target_command="tests.formats")
    assert [(line.level, line.message) for line in await _lines(runtime, run.id)] == [
        ("INFO", "sku-9: 3 left"),
        ("INFO", "100%% done"),  # no arguments: no formatting, as in the logging module
        ("WARNING", "an object, not a string"),
        ("ERROR", "'two placeholders %s %s' % ('one argument',)"),
        ("INFO", "through log(level)"),
        ("DEBUG", "debug once asked for"),
    ]


async def test_a_run_that_logs_nothing_writes_no_lines(runtime, clock, targets):
    run = await _run_once(runtime, clock, target_command="tests.silent")
    assert run.status == "succeeded"
    assert await _lines(runtime, run.id) == []


async def test_the_lines_are_capped_per_run_with_a_marker_and_long_lines_cut(runtime, clock, targets):
    settings = replace(runtime.settings, scheduler_run_log_max_lines=3, scheduler_run_log_max_line_length=100)
    small = Runtime.create(settings, clock=clock)
    try:
        run = await _run_once(small, clock, target_command="tests.chatty", target_payload={"pages": 10})
        lines = await _lines(small, run.id)
    finally:
        await small.close()
    assert [line.message for line in lines] == [
        "fetching 10 pages",
        "page 1 <b>done</b>",
        "page 2 <b>done</b>",
        "the log reached its limit of 3 lines; later lines are not kept",
    ]
    assert lines[-1].level == "WARNING"
    assert run.status == "succeeded"


async def test_no_lines_are_kept_when_capture_is_off(runtime, clock, targets):
    off = Runtime.create(replace(runtime.settings, scheduler_run_log_max_lines=0), clock=clock)
    try:
        run = await _run_once(off, clock, target_command="tests.chatty")
        assert await _lines(off, run.id) == []
    finally:
        await off.close()
    assert run.status == "succeeded"


async def test_a_failing_builtin_target_says_why_in_its_log(runtime, clock):
    run = await _run_once(
        runtime,
        clock,
        target_type="queue",
        target_queue="currency-rates",
        target_command=None,
        target_payload={"symbols": ["USD", "XXX"]},
    )
    assert run.status == "failed"
    assert [(line.level, line.message) for line in await _lines(runtime, run.id)] == [
        ("WARNING", "no rate for XXX; known: USD, GBP, PLN, JPY")
    ]


async def test_the_history_cleanup_deletes_the_lines_with_their_runs(runtime, clock, targets):
    old = await _run_once(runtime, clock, target_command="tests.chatty")
    clock.advance(days=8)
    job = await runtime.scheduler.create(job_definition(ACME_EU, name="Recent", target_command="tests.chatty"))
    recent = await runtime.scheduler.trigger(job.id)
    await fire(LocalScheduler(runtime))
    assert len(await _lines(runtime, recent.id)) == 6

    assert await delete_expired_runs(runtime, days=7) == 1
    assert await _lines(runtime, old.id) == []
    assert len(await _lines(runtime, recent.id)) == 6
    async with runtime.sessions() as session:
        assert await session.get(ScheduledJobRun, old.id) is None


async def test_a_reader_gets_the_lines_after_its_cursor_within_its_scope(runtime, clock, targets):
    run = await _run_once(runtime, clock, target_command="tests.chatty", target_payload={"pages": 4})
    first = await read_run_log(runtime.scheduler, run.id, ACME_ADMIN, limit=2)
    assert [line.seq for line in first.lines] == [1, 2]
    assert (first.after, first.finished, first.complete) == (2, True, False)
    rest = await read_run_log(runtime.scheduler, run.id, ACME_ADMIN, after=first.after)
    assert [line.seq for line in rest.lines] == [3, 4, 5, 6, 7]
    assert rest.complete
    done = await read_run_log(runtime.scheduler, run.id, ACME_ADMIN, after=rest.after)
    assert (done.lines, done.after, done.complete) == ([], 7, True)

    with pytest.raises(NotFound):
        await read_run_log(runtime.scheduler, run.id, GLOBEX_ADMIN)
    with pytest.raises(NotFound):
        await read_run_log(runtime.scheduler, run.id, ACME_ADMIN, job_id="another-job")
    with pytest.raises(ValidationError) as invalid:
        await read_run_log(runtime.scheduler, run.id, ACME_ADMIN, after=-1, limit=0)
    assert set(invalid.value.errors) == {"after", "limit"}


async def test_a_deleted_schedules_run_keeps_its_log(runtime, clock, targets):
    run = await _run_once(runtime, clock, target_command="tests.chatty")
    await runtime.scheduler.delete(run.job_id)
    page = await read_run_log(runtime.scheduler, run.id, ACME_ADMIN)
    assert len(page.lines) == 6


@pytest.mark.slow  # waits for the flusher's half second
async def test_the_lines_of_a_running_run_are_written_while_it_runs(runtime, clock):
    release = asyncio.Event()

    @runtime.registry.command("tests.waiting", label="Waiting", schedulable=True)
    async def waiting(payload, ctx):
        ctx.log.info("started")
        await release.wait()
        ctx.log.info("finished")

    try:
        job = await runtime.scheduler.create(job_definition(target_command="tests.waiting"))
        run = await runtime.scheduler.trigger(job.id)
        poller = LocalScheduler(runtime)
        await poller.tick(wait=False)
        deadline = time.monotonic() + 5
        while not (page := await read_run_log(runtime.scheduler, run.id)).lines:
            assert time.monotonic() < deadline, "the running run's line was not written"
            await asyncio.sleep(0.05)
        assert [line.message for line in page.lines] == ["started"]
        assert not page.finished
        release.set()
        await poller.drain()
    finally:
        runtime.registry._targets.pop(("command", "tests.waiting"))
    page = await read_run_log(runtime.scheduler, run.id, after=page.after)
    assert [line.message for line in page.lines] == ["finished"]
    assert page.complete


def test_a_target_called_directly_logs_to_the_targets_logger(caplog):
    from app.domain.registry import TargetContext
    from app.targets.builtin import sales_summary

    ctx = TargetContext("j", "r", SLOT, "manual", 1, "organization", "acme", "acme-eu", "me", "k")
    with caplog.at_level(logging.INFO, logger="mercato.targets"):
        asyncio.run(sales_summary({"period": "week"}, ctx))
    assert "orders in the week for acme-eu" in caplog.text
