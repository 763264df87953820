"""The health banner in real Chromium: a web process started with ``--no-scheduler`` and a
schedule due says that nothing fires and what to run; once a poller runs, the banner is gone.
The Processes page, as a superadmin sees it, is screenshotted for the docs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from app.persistence.models import ScheduledJob
from app.runtime import Runtime
from app.settings import PROJECT_ROOT, load_settings
from tests.browser.conftest import _free_port, _in_own_loop, _wait_until_up
from tests.browser.seed import seed
from tests.support.http import LIST
from tests.support.personas import PASSWORD, PASSWORD_HASH

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT_EMAIL = "root@example.com"
FAST = {"SCHEDULER_HEARTBEAT_SECONDS": "1", "SCHEDULER_POLL_INTERVAL_MS": "250", "PYTHONUNBUFFERED": "1"}


async def _seed_overdue(database_url: str) -> dict:
    """The browser tests' world, a superadmin, and "Partner stock sync" due 10 minutes ago."""
    seeded = await seed(database_url)
    runtime = Runtime.create(load_settings({"DATABASE_URL": database_url}))
    try:
        await runtime.users.create(ROOT_EMAIL, "", "admin", is_superadmin=True, password_hash=PASSWORD_HASH)
        async with runtime.sessions.begin() as session:
            await session.execute(
                sa.update(ScheduledJob)
                .where(ScheduledJob.id == seeded["jobs"]["Partner stock sync"])
                .values(next_run_at=runtime.clock() - timedelta(minutes=10))
            )
    finally:
        await runtime.close()
    return seeded


def _start(args: list[str], env: dict[str, str], log_path) -> subprocess.Popen:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def web_without_scheduler(pg_database, tmp_path_factory):
    """``mercato serve --no-scheduler`` over the seeded database, and a way to start a poller."""
    _in_own_loop(lambda: _seed_overdue(pg_database))
    logs = tmp_path_factory.mktemp("health")
    env = {**FAST, "DATABASE_URL": pg_database, "QUEUE_STRATEGY": "local"}
    port = _free_port()
    server = _start(["serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"], env, logs / "web.log")
    started: list[subprocess.Popen] = []

    def start_poller() -> subprocess.Popen:
        poller = _start(["scheduler", "start"], env, logs / f"poller-{len(started)}.log")
        started.append(poller)
        return poller

    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, server, logs / "web.log", timeout=60)
        yield {"url": base_url, "start_poller": start_poller}
    finally:
        for proc in [*started, server]:
            _stop(proc)


def sign_in(page: Page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Scheduled jobs")).to_be_visible()


def reload_until(page: Page, selector: str, count: int, *, has_text: str | None = None) -> None:
    """Reload until ``selector`` matches ``count`` elements (a process starts in a second or two)."""
    for _ in range(60):
        if page.locator(selector, has_text=has_text).count() == count:
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator(selector, has_text=has_text)).to_have_count(count)


def test_the_banner_says_what_to_run_until_a_poller_runs(page: Page, web_without_scheduler, screenshot):
    base = web_without_scheduler["url"]
    sign_in(page, base, ROOT_EMAIL)
    banner = page.get_by_role("alert").filter(has_text="The scheduler needs attention")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("No scheduler is running")
    expect(banner.locator("code")).to_contain_text(["mercato scheduler start"])
    expect(banner).to_contain_text("Schedules are due for more than 2 minutes")
    screenshot(page, "health-banner", full_page=False)

    # The same banner on every scheduler page, with a way to the processes.
    banner.get_by_role("link", name="See the processes").click()
    expect(page.get_by_role("heading", name="Processes", exact=True)).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("No scheduler is running")
    expect(page.get_by_text("No process has reported in the last hour")).to_be_visible()

    poller = web_without_scheduler["start_poller"]()
    # The poller reports itself and fires the overdue slot (catch-up): reloads show no banner.
    reload_until(page, ".health-banner", 0)
    row = page.locator('tr[data-process][data-kind="poller"][data-state="live"]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text(str(poller.pid))
    expect(page.locator('dd[data-kind="poller"]')).to_have_text("1")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedules").click()
    expect(page.get_by_role("heading", name="Scheduled jobs")).to_be_visible()
    expect(page.locator(".health-banner")).to_have_count(0)


def test_the_processes_page_as_a_superadmin_and_as_a_tenant_admin(page: Page, web_without_scheduler, screenshot):
    base = web_without_scheduler["url"]
    web_without_scheduler["start_poller"]()  # stays
    stopped = web_without_scheduler["start_poller"]()
    sign_in(page, base, ROOT_EMAIL)
    page.goto(f"{base}{LIST}/processes")
    reload_until(page, 'tr[data-process][data-state="live"]', 1, has_text=str(stopped.pid))
    _stop(stopped)
    reload_until(page, 'tr[data-process][data-state="stopped"]', 1, has_text=str(stopped.pid))
    expect(page.get_by_role("columnheader", name="Host")).to_be_visible()
    expect(page.locator(".health-banner")).to_have_count(0)  # the other poller still runs
    screenshot(page, "processes")

    page.context.clear_cookies()
    sign_in(page, base, "owner@acme.test")
    page.goto(f"{base}{LIST}/processes")
    expect(page.locator("tr[data-process]").first).to_be_visible()
    expect(page.get_by_role("columnheader", name="Host")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"Runs in flight \(your scope\)"))).to_be_visible()
    expect(page.get_by_text(str(stopped.pid), exact=True)).to_have_count(0)
