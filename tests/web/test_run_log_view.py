"""A run's log in its view: read when the run is opened, escaped, in the schedule's zone, and
followed with a cursor while the run runs (the answer brings the element that asks for more)."""

from __future__ import annotations

import re

import pytest

from tests.api.test_run_logs import add_lines, finish
from tests.api.test_runs import add_runs
from tests.support.factories import make_job
from tests.support.firing import run_queued
from tests.support.http import HTMX, as_user, url


@pytest.fixture
def db_url(pg_url):
    return pg_url


async def test_an_opened_run_reads_its_log_and_keeps_it_across_its_own_polls(client, app_runtime):
    job = await make_job(app_runtime)
    run = await app_runtime.scheduler.trigger(job.id)
    await as_user(client, app_runtime, "viewer@acme.test")
    row = (await client.get(url(job.id, f"/runs/{run.id}"), headers=HTMX)).text
    section = re.search(r'<section class="run-log" id="run-log-[^"]+" hx-preserve="true"[^>]*>.*?</section>', row, re.S)
    assert section, row
    assert f'hx-get="{url(job.id, f"/runs/{run.id}/logs")}" hx-trigger="intersect once"' in section.group(0)


async def test_a_running_runs_lines_come_escaped_with_the_element_that_asks_for_the_next(client, app_runtime):
    job = await make_job(app_runtime, timezone="Europe/Warsaw")
    [run_id] = await add_runs(app_runtime, job, [(0, "running", "manual", {})])
    await add_lines(app_runtime, run_id, [("INFO", "step 1"), ("ERROR", "<script>alert(1)</script>")])
    await as_user(client, app_runtime, "viewer@acme.test")
    path = url(job.id, f"/runs/{run_id}/logs")
    first = (await client.get(path, headers=HTMX)).text
    assert "<script>alert" not in first and "&lt;script&gt;alert(1)&lt;/script&gt;" in first
    assert '<span class="log-time">11:00:01.000</span> <span class="log-level">INFO</span>' in first  # CEST
    assert 'class="log-line level-error"' in first
    assert f'hx-get="{path}?after=2"' in first and 'hx-trigger="every 1s"' in first

    await add_lines(app_runtime, run_id, [("INFO", "step 3")], first=3)
    more = (await client.get(f"{path}?after=2", headers=HTMX)).text
    assert "step 3" in more and "step 1" not in more and f'hx-get="{path}?after=3"' in more

    await finish(app_runtime, run_id)
    done = (await client.get(f"{path}?after=3", headers=HTMX)).text
    assert "log-more" not in done and "hx-get" not in done  # finished and read: nothing more to ask


async def test_a_long_log_is_read_in_answers_that_ask_for_the_rest_at_once(client, app_runtime):
    job = await make_job(app_runtime)
    [run_id] = await add_runs(app_runtime, job, [(0, "succeeded", "manual", {})])
    await add_lines(app_runtime, run_id, [("INFO", f"line {i}") for i in range(1, 251)])
    await as_user(client, app_runtime, "viewer@acme.test")
    path = url(job.id, f"/runs/{run_id}/logs")
    first = (await client.get(path, headers=HTMX)).text
    assert first.count('class="log-line') == 200 and f'hx-get="{path}?after=200" hx-trigger="load"' in first
    rest = (await client.get(f"{path}?after=200", headers=HTMX)).text
    assert rest.count('class="log-line') == 50 and "log-more" not in rest


async def test_a_run_that_logged_nothing_says_so(client, app_runtime):
    job = await make_job(app_runtime, target_command="reports.sales-summary", target_payload={"period": "day"})
    silent = await app_runtime.scheduler.trigger(job.id)
    [run_id] = await add_runs(app_runtime, job, [(0, "succeeded", "manual", {})])
    await run_queued(app_runtime)
    await as_user(client, app_runtime, "viewer@acme.test")
    assert "Nothing logged." in (await client.get(url(job.id, f"/runs/{run_id}/logs"))).text
    logged = (await client.get(url(job.id, f"/runs/{silent.id}/logs"))).text
    assert "orders in the day for acme-eu" in logged and "Nothing logged." not in logged


async def test_outside_the_runs_scope_its_log_does_not_exist(client, app_runtime):
    job = await make_job(app_runtime)
    [run_id] = await add_runs(app_runtime, job, [(0, "succeeded", "manual", {})])
    await add_lines(app_runtime, run_id, [("INFO", "acme only")])
    await as_user(client, app_runtime, "owner@globex.test")
    response = await client.get(url(job.id, f"/runs/{run_id}/logs"), headers=HTMX)
    assert response.status_code == 404 and "acme only" not in response.text
    await as_user(client, app_runtime, "owner@acme.test")
    other = await make_job(app_runtime, name="Another")
    assert (await client.get(url(other.id, f"/runs/{run_id}/logs"))).status_code == 404  # not its run
