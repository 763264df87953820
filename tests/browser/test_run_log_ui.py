"""A running run's log in real Chromium: it follows new lines without a reload and stops when
the run has finished."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from app.domain.actors import SYSTEM
from app.runtime import Runtime
from app.settings import load_settings
from tests.browser.conftest import _in_own_loop
from tests.browser.seed import ACME, OWNER
from tests.browser.test_admin_ui import sign_in
from tests.support.http import LIST

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a live server process, and Chromium


async def _slow_import(database_url: str) -> str:
    runtime = Runtime.create(load_settings({"DATABASE_URL": database_url}))
    try:
        job = await runtime.scheduler.create(
            {
                **ACME,
                "name": "Catalogue import",
                "description": "Imports the supplier's catalogue, page by page.",
                "schedule_type": "cron",
                "schedule_value": "0 4 * * *",
                "timezone": "Europe/Berlin",
                "target_type": "command",
                "target_command": "demo.echo",
                "target_payload": {"message": "catalogue", "sleep": 5},
            },
            SYSTEM,
        )
        return job.id
    finally:
        await runtime.close()


def test_a_running_runs_log_follows_new_lines_without_a_reload(page: Page, live_server, pg_database, screenshot):
    job_id = _in_own_loop(lambda: _slow_import(pg_database))
    base = live_server["url"]
    sign_in(page, base, OWNER)
    page.goto(f"{base}{LIST}/{job_id}")
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_role("button", name="Run now").click()
    run = page.locator("#run-history li.run").first
    expect(run).to_contain_text(re.compile("Queued|Running"))
    run.locator("summary").click()

    log = run.get_by_role("region", name="Log")
    expect(log).to_contain_text("echo 'catalogue' (attempt 1)", timeout=10_000)
    expect(log).to_contain_text("sleeping 5 s")
    expect(log).to_contain_text("slept 2 of 5 s", timeout=10_000)  # a line that came later
    expect(log.locator(".log-more")).to_contain_text("Following the log…")
    expect(run).to_contain_text("Running")
    run.scroll_into_view_if_needed()
    screenshot(page, "run-log", full_page=False)

    expect(run).to_contain_text("Succeeded", timeout=15_000)
    expect(log).to_contain_text("slept 5 of 5 s")
    expect(log.locator(".log-more")).to_have_count(0)  # finished: nothing more is asked for
    expect(log.locator(".log-line")).to_have_count(7)  # each line once
    assert page.evaluate("window.stillTheSamePage") is True
