"""``mercato scheduler run --payload`` and ``mercato scheduler cancel`` as real processes (local
strategy): a run with input, a queued run cancelled, and a run executing in one ``mercato``
process cancelled from another."""

from __future__ import annotations

import asyncio
import getpass
import os
import subprocess
import sys
import time

import pytest

from tests.support.cli import mercato
from tests.support.factories import job_definition
from tests.support.firing import runs_of

pytestmark = pytest.mark.slow  # every test runs the command line as a process


def mercato_local(*args: str, db_url: str):
    return mercato(*args, db_url=db_url, QUEUE_STRATEGY="local")


async def test_run_with_a_payload_runs_with_that_input_and_records_it(runtime, db_url):
    job = await runtime.scheduler.create(job_definition(target_payload={"message": "schedule"}))
    result = mercato_local("scheduler", "run", job.id, "--payload", '{"message": "from the shell"}', db_url=db_url)
    assert result.returncode == 0, result.stderr
    [run] = await runs_of(runtime, job.id)
    assert run.payload == {"message": "from the shell"} and run.result["echo"] == {"message": "from the shell"}


@pytest.mark.parametrize(
    "payload, message",
    [
        ("{nope", "Invalid value for '--payload': not valid JSON"),
        ("[1]", "Invalid value for '--payload': must be a JSON object"),
        ('{"blob": "' + "x" * 70_000 + '"}', "Error: payload: payload is 70,012 bytes; the limit is 65,536"),
    ],
)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_bad_payload_is_a_clear_error_and_runs_nothing(runtime, db_url, payload, message):
    job = await runtime.scheduler.create(job_definition())
    result = mercato_local("scheduler", "run", job.id, "--payload", payload, db_url=db_url)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and await runs_of(runtime, job.id) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_cancel_a_queued_run_and_then_it_is_finished(runtime, db_url):
    job = await runtime.scheduler.create(job_definition())
    run = await runtime.scheduler.trigger(job.id)
    result = mercato_local("scheduler", "cancel", run.id, db_url=db_url)
    assert (result.returncode, result.stdout) == (0, f"cancelled run {run.id} before it started\n"), result.stderr
    [row] = await runs_of(runtime, job.id)
    assert (row.status, row.cancelled_by) == ("cancelled", f"cli:{getpass.getuser()}")
    again = mercato_local("scheduler", "cancel", run.id, db_url=db_url)
    assert again.returncode == 1
    assert again.stderr == (
        f"Error: run {run.id} has already finished (cancelled); only a queued or running run can be cancelled\n"
    )
    unknown = mercato_local("scheduler", "cancel", "no-such-run", db_url=db_url)
    assert (unknown.returncode, unknown.stderr) == (1, "Error: no run with id 'no-such-run'\n")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_run_executing_in_another_process_is_cancelled_within_two_seconds(runtime, db_url):
    pg_url = db_url
    job = await runtime.scheduler.create(job_definition())
    env = {**os.environ, "DATABASE_URL": pg_url, "QUEUE_STRATEGY": "local"}
    command = [sys.executable, "-m", "app.cli", "scheduler", "run", job.id, "--payload", '{"sleep": 30}']
    running = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run = await _wait_running(runtime, job.id)
        cancel = mercato_local("scheduler", "cancel", run.id, db_url=pg_url)
        asked = time.monotonic()
        assert cancel.stdout == f"asked to cancel run {run.id}: the process running it stops it within 2 s\n"
        while (row := (await runs_of(runtime, job.id))[0]).finished_at is None:
            assert time.monotonic() - asked < 5, "not cancelled"
            await asyncio.sleep(0.05)
        took = time.monotonic() - asked
        out, err = running.communicate(timeout=15)
    finally:
        running.kill()
    print(f"\ncancelled in the other process {took * 1000:.0f} ms after the request")
    assert took < 2.0
    assert row.status == "cancelled" and row.reason == f"cancelled by cli:{getpass.getuser()}"
    assert running.returncode == 0 and out == f"run {run.id} of {job.id} cancelled: {row.reason}\n", err


async def _wait_running(runtime, job_id, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        runs = await runs_of(runtime, job_id)
        if runs and runs[0].status == "running":
            return runs[0]
        assert time.monotonic() < deadline, "the run did not start"
        await asyncio.sleep(0.1)
