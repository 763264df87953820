"""``mercato scheduler logs RUN_ID [--follow]`` as a real process; with ``--follow``, beside a
real local poller (``mercato scheduler start``) running the run."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from app.persistence.models import ScheduledJobRun
from app.settings import PROJECT_ROOT
from tests.support.cli import mercato
from tests.support.factories import job_definition
from tests.support.firing import run_queued

pytestmark = pytest.mark.slow  # the command line runs as a process


async def test_logs_prints_each_line_with_its_time_and_level(runtime, db_url):
    job = await runtime.scheduler.create(job_definition(target_payload={"message": "hi", "fail": "ERP <down>"}))
    run = await runtime.scheduler.trigger(job.id)
    await run_queued(runtime)
    result = mercato("scheduler", "logs", run.id, db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2026-06-01T12:00:00+00:00  INFO     echo 'hi' (attempt 1)",
        "2026-06-01T12:00:00+00:00  ERROR    failing as the payload asks: ERP <down>",
    ]
    assert result.stderr == ""


async def test_logs_of_a_run_that_logged_nothing_or_is_unknown(runtime, db_url):
    job = await runtime.scheduler.create(job_definition())
    run = await runtime.scheduler.trigger(job.id)
    await runtime.scheduler.delete(job.id)
    await run_queued(runtime)  # skipped: the schedule was deleted
    quiet = mercato("scheduler", "logs", run.id, db_url=db_url)
    assert (quiet.returncode, quiet.stdout) == (0, "")
    assert quiet.stderr == f"run {run.id} skipped; it logged nothing\n"
    unknown = mercato("scheduler", "logs", "no-such-run", db_url=db_url)
    assert unknown.returncode == 1
    assert unknown.stderr == "Error: no run with id 'no-such-run'\n"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_follow_prints_the_lines_of_a_running_run_as_they_come_and_exits_when_it_ends(runtime, db_url, tmp_path):
    job = await runtime.scheduler.create(job_definition(target_payload={"message": "count", "sleep": 3}))
    env = {**os.environ, "DATABASE_URL": db_url, "QUEUE_STRATEGY": "local", "SCHEDULER_POLL_INTERVAL_MS": "200"}
    log = (tmp_path / "scheduler.log").open("wb")
    poller = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "scheduler", "start"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
    )
    follower = None
    try:
        run = await runtime.scheduler.trigger(job.id)
        follower = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "scheduler", "logs", run.id, "--follow"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout], daemon=True).start()
        seen = []
        while not any("sleeping 3 s" in line for line in seen):
            seen.append(lines.get(timeout=30))
        async with runtime.sessions() as session:
            assert (await session.get(ScheduledJobRun, run.id)).status == "running"  # seen live
        assert follower.wait(timeout=30) == 0
        time.sleep(0.1)  # the reader thread takes the last lines
        while not lines.empty():
            seen.append(lines.get())
        assert [line.split("  ", 1)[1].strip() for line in seen] == [
            "INFO     echo 'count' (attempt 1)",
            "INFO     sleeping 3 s",
            "INFO     slept 1 of 3 s",
            "INFO     slept 2 of 3 s",
            "INFO     slept 3 of 3 s",
        ]
        assert follower.stderr.read() == f"run {run.id} succeeded\n"
    finally:
        if follower and follower.poll() is None:
            follower.kill()
        poller.send_signal(signal.SIGTERM)
        poller.wait(timeout=20)
        log.close()
