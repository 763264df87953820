"""Bring back what was deleted yesterday, in real Chromium: delete, find it under Deleted, read its
history, restore it with one click."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.seed import OWNER, VIEWER
from tests.support.http import LIST
from tests.support.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a live server process, and Chromium


def sign_in(page: Page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}{LIST}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Scheduled jobs")).to_be_visible()


def delete(page: Page, base: str, job_id: str, name: str) -> None:
    page.goto(f"{base}{LIST}/{job_id}")
    page.get_by_role("link", name="Delete…").click()
    page.get_by_role("button", name="Delete schedule").click()
    expect(page.locator("#flash")).to_contain_text(f"Deleted “{name}”.")


def test_a_deleted_schedule_is_found_under_deleted_read_and_restored_with_one_click(
    page: Page, live_server, screenshot
):
    base, jobs = live_server["url"], live_server["jobs"]
    sign_in(page, base, OWNER)
    for name in ("Warm product caches", "Nightly catalogue export", "Fetch currency rates"):
        delete(page, base, jobs[name], name)
    expect(page.locator("#jobs-table")).not_to_contain_text("Fetch currency rates")

    # --- the Deleted view, from the main navigation: newest deletion first, who and when ------------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deleted").click()
    expect(page.get_by_role("heading", name="Deleted schedules", level=1)).to_be_visible()
    rows = page.locator("#deleted-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Fetch currency rates")
    expect(rows.first).to_contain_text(f"by {OWNER}")
    expect(rows.last).to_contain_text("Warm product caches")
    screenshot(page, "deleted")

    # --- searched without a reload -------------------------------------------------------------------
    page.get_by_label("Search").fill("catalogue")
    expect(page).to_have_url(re.compile(r"deleted\?q=catalogue"))
    expect(rows).to_have_count(1)
    page.get_by_label("Search").fill("")
    expect(rows).to_have_count(3)

    # --- its own page: read-only, its history and audit trail readable --------------------------------
    rows.first.get_by_role("link", name="Fetch currency rates").click()
    expect(page.get_by_role("heading", name="Fetch currency rates", level=1)).to_be_visible()
    expect(page.get_by_role("note")).to_contain_text("Deleted")
    expect(page.get_by_role("note")).to_contain_text(f"by {OWNER}")
    expect(page.locator("#run-history li.run").first).to_be_visible()
    expect(page.locator(".audit")).to_contain_text(f"Deleted by {OWNER}")
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    screenshot(page, "deleted-detail", full_page=False)
    first_failure = page.locator("#run-history li.run", has_text="Failed").first
    first_failure.locator("summary").click()
    expect(first_failure).to_contain_text("unknown currency symbols")

    # --- one click on Deleted brings it back --------------------------------------------------------
    page.get_by_role("link", name="Deleted", exact=True).first.click()
    rows.first.get_by_role("button", name="Restore").click()
    expect(page.locator("#flash")).to_contain_text("Restored “Fetch currency rates”. Next run:")
    expect(rows).to_have_count(2)
    page.locator("#flash").get_by_role("link", name="Open it").click()
    expect(page.get_by_role("heading", name="Fetch currency rates", level=1)).to_be_visible()
    expect(page.get_by_role("note")).to_have_count(0)
    expect(page.get_by_role("button", name="Run now")).to_be_visible()
    expect(page.locator("#run-history li.run").first).to_be_visible()
    expect(page.locator(".audit li").first).to_contain_text(f"Restored from Deleted by {OWNER}")

    # --- a viewer sees what was deleted, without the button ----------------------------------------
    page.context.clear_cookies()
    sign_in(page, base, VIEWER)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deleted").click()
    expect(rows).to_have_count(2)
    expect(page.get_by_role("button", name=re.compile("^Restore"))).to_have_count(0)
