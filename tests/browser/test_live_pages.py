"""Pages that stay current while they are open: new runs appear, times move on, nothing typed,
selected or opened is lost, and the page is never reloaded."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.seed import OWNER
from tests.browser.test_admin_ui import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a live server process, and Chromium


def create_every_ten_seconds(page: Page, name: str) -> None:
    page.get_by_role("link", name="New schedule").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Schedule type").select_option("interval")
    page.get_by_label("Schedule", exact=True).fill("10s")
    page.get_by_label("Target").select_option("command:demo.echo")
    page.get_by_label("Payload").fill('{"message": "tick"}')
    page.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


def test_a_schedule_page_shows_new_runs_and_a_consistent_overview_without_a_reload(page: Page, live_server):
    base = live_server["url"]
    sign_in(page, base, OWNER)
    create_every_ten_seconds(page, "Live ticker")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#run-history")).to_contain_text("No runs yet.")

    # The first slot comes within ten seconds; the page asks for news every five.
    history = page.locator("#run-history li.run")
    expect(history.first).to_contain_text("Succeeded", timeout=25_000)
    first_run = history.first.get_attribute("id")
    history.first.locator("summary").click()  # the user opens it...
    expect(page.locator("#overview")).to_contain_text("Succeeded")
    expect(page.locator("#overview")).not_to_contain_text("Running")
    # ...the next slot arrives: a second run is listed above it, and the first one stays open.
    expect(history).to_have_count(2, timeout=25_000)
    expect(page.locator(f"#{first_run} details")).to_have_attribute("open", "")
    expect(page.locator("#overview .bar")).to_have_count(2)
    next_run = page.locator("#overview .stats div", has_text="Next run")
    expect(next_run).to_contain_text(re.compile("in a few seconds|in 1[0-9] seconds|just now"))
    assert page.evaluate("window.stillTheSamePage") is True


def test_the_list_keeps_its_times_current_and_the_selection_and_typing(page: Page, live_server):
    base = live_server["url"]
    sign_in(page, base, OWNER)
    create_every_ten_seconds(page, "Live list ticker")
    page.get_by_role("link", name="Scheduled jobs").first.click()
    page.evaluate("window.stillTheSamePage = true")
    row = page.locator("#jobs-table tbody tr", has_text="Live list ticker")
    row.get_by_role("checkbox").check()
    expect(row).to_contain_text("Never")
    page.get_by_label("Per page").focus()

    # The row's last run fills in while the page is open; what the user did stays as it was.
    expect(row).to_contain_text("Succeeded", timeout=30_000)
    expect(row.get_by_role("checkbox")).to_be_checked()
    expect(page.locator("[data-selected-count]")).to_have_text("1 selected:")
    expect(page.get_by_label("Per page")).to_be_focused()
    assert page.evaluate("window.stillTheSamePage") is True
