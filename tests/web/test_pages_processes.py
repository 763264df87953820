"""The Processes page and the health banner: shown where nothing fires, absent where a poller
runs; hosts and pids for superadmins only."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domain.heartbeats import Heartbeat, ProcessKind
from app.persistence.models import ScheduledJob
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.http import HTMX, LIST, as_user
from tests.support.personas import ACME_OWNER, ACME_VIEWER, ROOT

BANNER = "The scheduler needs attention"


@pytest.fixture
async def poller(app_runtime):
    beat = Heartbeat(app_runtime, ProcessKind.EMBEDDED, lambda: 4)
    await beat.start()
    yield beat
    await beat.stop()


async def test_every_scheduler_page_says_when_no_scheduler_runs_and_what_to_run(client, app_runtime):
    job = await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    await as_user(client, app_runtime, ACME_VIEWER)
    for url in (LIST, f"{LIST}/{job.id}", f"{LIST}/processes"):
        text = (await client.get(url)).text
        assert BANNER in text, url
        assert "No scheduler is running" in text and "<code>mercato scheduler start</code>" in text


async def test_no_banner_while_a_poller_is_alive(client, app_runtime, poller):
    job = await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    await as_user(client, app_runtime, ACME_OWNER)
    for url in (LIST, f"{LIST}/{job.id}", f"{LIST}/processes", f"{LIST}/new"):
        assert BANNER not in (await client.get(url)).text, url


async def test_the_banner_names_a_slot_due_too_long_even_with_a_poller_alive(client, app_runtime, clock, poller):
    job = await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    async with app_runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id == job.id).values(next_run_at=clock() - timedelta(minutes=7))
        )
    await as_user(client, app_runtime, ACME_VIEWER)
    text = (await client.get(LIST)).text
    assert "Schedules are due for more than 2 minutes" in text
    assert "oldest since 2026-06-01 11:53:00 UTC" in text


async def test_fragments_and_the_sign_in_page_carry_no_banner(client, app_runtime):
    assert BANNER not in (await client.get("/login")).text
    await as_user(client, app_runtime, ACME_VIEWER)
    fragment = await client.get(LIST, headers={**HTMX, "HX-Target": "jobs-table"})
    assert fragment.status_code == 200 and BANNER not in fragment.text


async def test_a_superadmin_sees_host_pid_version_and_runs_of_each_process(client, app_runtime, poller):
    await as_user(client, app_runtime, ROOT)
    text = (await client.get(f"{LIST}/processes")).text
    assert f'data-process="{poller.id}"' in text and 'data-state="live"' in text
    assert "Poller in the web app" in text
    assert f'<td class="mono">{poller.host}</td>' in text and f'<td class="mono">{poller.pid}</td>' in text
    assert '<th scope="col">Host</th>' in text


async def test_a_tenant_admin_sees_the_process_but_not_where_it_runs(client, app_runtime, poller):
    await as_user(client, app_runtime, ACME_OWNER)
    text = (await client.get(f"{LIST}/processes")).text
    assert f'data-process="{poller.id}"' in text
    assert '<th scope="col">Host</th>' not in text and f'<td class="mono">{poller.pid}</td>' not in text
    assert "Runs in flight (your scope)" in text


async def test_the_navigation_leads_to_the_processes_page(client, app_runtime):
    await as_user(client, app_runtime, ACME_VIEWER)
    text = (await client.get(LIST)).text
    assert f'href="{LIST}/processes"' in text
    processes = (await client.get(f"{LIST}/processes")).text
    assert f'<a href="{LIST}/processes" aria-current="page">Processes</a>' in processes
    assert "No process has reported in the last hour" in processes


async def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = await client.get(f"{LIST}/processes")
    assert response.status_code == 302 and response.headers["location"].startswith("/login")
