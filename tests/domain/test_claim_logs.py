"""Structured logs: one line per claimed slot, with schedule id, run id and slot."""

from __future__ import annotations

import logging

from app.strategies.local import LocalScheduler
from tests.support.clock import utc
from tests.support.factories import job_definition
from tests.support.firing import fire, runs_of


async def test_each_claimed_slot_logs_one_line_with_its_ids(runtime, clock, caplog):
    job = await runtime.scheduler.create(job_definition())
    clock.set(job.next_run_at)
    with caplog.at_level(logging.INFO, logger="mercato.firing"):
        await fire(LocalScheduler(runtime))
    [run] = await runs_of(runtime, job.id)
    [line] = [r for r in caplog.records if r.name == "mercato.firing"]
    assert line.getMessage() == "slot queued"
    assert (line.job_id, line.run_id, line.slot) == (job.id, run.id, run.scheduled_for.isoformat())
    assert run.scheduled_for >= utc(2026, 6, 1, 12, 0)
