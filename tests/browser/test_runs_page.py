"""The Runs page in real Chromium: what failed across every schedule, and a run's own page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.seed import OWNER
from tests.browser.test_admin_ui import sign_in
from tests.support.http import LIST

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a live server process, and Chromium


def test_an_owner_finds_what_failed_across_schedules_and_opens_the_run(page: Page, live_server, screenshot):
    base = live_server["url"]
    sign_in(page, base, OWNER)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    expect(page.get_by_role("heading", name="Runs", level=1)).to_be_visible()
    rows = page.locator("#runs-table tbody tr")
    expect(rows.first).to_be_visible()
    counts = page.get_by_role("navigation", name="Runs by status")
    expect(counts).to_contain_text(re.compile(r"\d+ failed"))
    expect(counts).to_contain_text(re.compile(r"\d+ succeeded"))

    # --- the failed count is a filter: htmx swaps the table, the URL and the form follow ----------
    page.evaluate("window.stillTheSamePage = true")
    counts.get_by_role("link", name=re.compile(r"\d+ failed")).click()
    expect(page).to_have_url(re.compile(r"status=failed"))
    expect(page.get_by_label("Status", exact=True)).to_have_value("failed")
    expect(page.locator("#runs-table tbody tr:not(:has(.badge.status-failed))")).to_have_count(0)
    currency = rows.filter(has_text="Fetch currency rates")
    expect(currency).to_have_count(1)
    expect(currency).to_contain_text("ValueError: unknown currency symbols: XAU")
    expect(counts.get_by_role("link", name=re.compile(r"failed"))).to_have_attribute("aria-current", "true")
    assert page.evaluate("window.stillTheSamePage") is True
    screenshot(page, "runs")

    # --- a time range that cannot be read is named, and nothing breaks ------------------------------
    page.get_by_label("Since").fill("last tuesday")
    page.get_by_label("Since").press("Enter")
    expect(page.locator("#error-since")).to_contain_text("must be an ISO 8601 instant")
    page.get_by_label("Since").fill("7d")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"since=7d"))
    expect(currency).to_have_count(1)

    # --- the run's own page: a full page with the error, opened from the list and directly ----------
    currency.get_by_role("link", name=re.compile("Open")).click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", name="Run of Fetch currency rates")).to_be_visible()
    expect(page.locator(".run-body")).to_contain_text("ValueError: unknown currency symbols: XAU")
    run_url = page.url
    page.goto(run_url)  # shared as a link: the whole page, not a fragment
    expect(page.get_by_role("heading", name="Run of Fetch currency rates")).to_be_visible()
    breadcrumbs = page.get_by_role("navigation", name="Breadcrumb")
    breadcrumbs.get_by_role("link", name="Fetch currency rates").click()
    expect(page.get_by_role("heading", name="Fetch currency rates", level=1)).to_be_visible()
    page.go_back()
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Runs").click()
    expect(page).to_have_url(re.compile(rf"{LIST}/runs$"))
