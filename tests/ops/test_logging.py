"""Structured logs: one JSON object per line, carrying the schedule id, run id and slot."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from app.domain.outcomes import execute_run
from app.domain.starting import start_run
from app.logging import JsonFormatter, configure_logging
from tests.support.cli import mercato
from tests.support.factories import DAILY_SALES_REPORT, job_definition


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url


def record(msg="claimed slots", **extra) -> logging.LogRecord:
    made = logging.getLogger("mercato.test").makeRecord(
        "mercato.test", logging.INFO, __file__, 1, msg, (), None, extra=extra
    )
    return made


def test_a_record_is_one_json_line_with_its_context():
    line = JsonFormatter().format(
        record(job_id="reports:daily", run_id="r-1", slot="2026-06-01T09:00:00+00:00", jobs=3)
    )
    assert "\n" not in line
    event = json.loads(line)
    assert event["event"] == "claimed slots" and event["level"] == "info" and event["logger"] == "mercato.test"
    assert (event["job_id"], event["run_id"], event["slot"], event["jobs"]) == (
        "reports:daily",
        "r-1",
        "2026-06-01T09:00:00+00:00",
        3,
    )
    assert event["ts"].endswith("+00:00")


def test_exceptions_and_odd_values_stay_on_one_line():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        failed = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info(), extra={"when": object()}
        )
    line = JsonFormatter().format(failed)
    event = json.loads(line)
    assert "\n" not in line and "ValueError: boom" in event["exception"] and event["when"].startswith("<object")


async def test_a_finished_run_logs_its_schedule_run_and_slot(runtime, caplog):
    job = await runtime.scheduler.create(
        job_definition(DAILY_SALES_REPORT, target_command="demo.echo", target_payload={"fail": "nope"})
    )
    run = await runtime.scheduler.trigger(job.id)
    await start_run(runtime.execution, run.id)
    with caplog.at_level(logging.INFO, logger="mercato.execution"):
        await execute_run(runtime.execution, run.id)
    (finished,) = [r for r in caplog.records if r.getMessage() == "run finished"]
    event = json.loads(JsonFormatter().format(finished))
    assert event["job_id"] == job.id and event["run_id"] == run.id and event["status"] == "failed"
    assert event["slot"] == run.scheduled_for.isoformat()


def test_configure_logging_installs_one_handler():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("json", "warning")
        configure_logging("json", "warning")
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.WARNING
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


@pytest.mark.slow
async def test_the_cli_logs_json_lines(runtime, db_url):
    job = await runtime.scheduler.create(
        job_definition(DAILY_SALES_REPORT, target_command="demo.echo", target_payload={})
    )
    result = mercato("--log-format", "json", "scheduler", "run", job.id, db_url=db_url)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]  # every line is one JSON object
    (finished,) = [e for e in events if e["event"] == "run finished"]
    assert finished["job_id"] == job.id and finished["status"] == "succeeded" and finished["run_id"] in result.stdout
