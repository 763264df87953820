"""The admin UI in real Chromium, the way ops staff use it: by labels and roles, without reloads."""

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
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Scheduled jobs")).to_be_visible()


def test_an_owner_creates_finds_runs_pauses_edits_deletes_and_restores_a_schedule(page: Page, live_server, screenshot):
    base = live_server["url"]
    sign_in(page, base, OWNER)

    # --- create, with a mistake fixed in place --------------------------------------------
    page.get_by_role("link", name="New schedule").click()
    page.get_by_label("Name").fill("Inventory snapshot")
    page.get_by_label("Description").fill("Counts stock per warehouse for the dashboard.")
    schedule = page.get_by_label("Schedule", exact=True)
    schedule.fill("61 * * * *")
    preview = page.locator("#schedule-preview")
    expect(preview).to_contain_text("61 is out of range 0-59")  # live, before saving
    schedule.fill("*/5 * * * *")
    page.get_by_label("Timezone").fill("Europe/Warsaw")
    expect(preview).to_contain_text("Every 5 minutes")
    expect(preview.locator("li")).to_have_count(5)
    expect(preview).to_contain_text("CE")  # CET or CEST: shown in the schedule's own zone
    page.get_by_label("Target").select_option("command:demo.echo")
    expect(page.locator("#target-hint")).to_contain_text("Returns its payload")
    payload = page.get_by_label("Payload")
    payload.fill('{"message": "count", "sleep": 1}')
    page.get_by_label("Timeout (s)").fill("30")
    expect(page.locator("#payload-status")).to_contain_text("Valid JSON")
    screenshot(page, "form")
    payload.fill('{"message": "count", "sleep": 1')  # a slip of the finger
    expect(page.locator("#payload-status")).to_contain_text("Not valid JSON yet")
    page.get_by_role("button", name="Create schedule").click()

    expect(page.locator("#error-target_payload")).to_contain_text("not valid JSON")
    expect(payload).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_have_value("Inventory snapshot")  # what was typed is kept
    expect(page.get_by_label("Timeout (s)")).to_have_value("30")
    payload.fill('{"message": "count", "sleep": 1}')
    expect(page.locator("#payload-status")).to_contain_text("Valid JSON")
    page.get_by_role("button", name="Create schedule").click()

    expect(page.get_by_role("heading", name="Inventory snapshot", level=1)).to_be_visible()
    expect(page.locator("#flash")).to_contain_text("Created “Inventory snapshot”.")
    detail_url = page.url

    # --- find it by search and filter (htmx swaps the table and keeps the URL in step) -----------
    page.get_by_role("link", name="Scheduled jobs").first.click()
    page.get_by_label("Search").fill("inventory")
    expect(page).to_have_url(re.compile(r"q=inventory"))
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Inventory snapshot")
    page.get_by_label("Target type").select_option("command")
    expect(page).to_have_url(re.compile(r"target=command"))
    expect(rows).to_have_count(1)
    page.get_by_label("Enabled", exact=True).select_option("false")
    expect(page.locator("#jobs-table")).to_contain_text("No schedules match")
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"enabled=false"))
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name="Inventory snapshot", exact=True).click()
    expect(page).to_have_url(detail_url)

    # --- run it now: the run appears, runs and finishes without a reload ------------------------
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#flash")).to_contain_text("Queued a run of “Inventory snapshot”.")
    run = page.locator("#run-history li.run").first
    expect(run).to_contain_text(re.compile("Queued|Running"))
    expect(run).to_contain_text("Succeeded", timeout=15_000)
    expect(page.locator("#overview")).to_contain_text("Succeeded")  # status panel refreshed itself
    expect(page.locator("#overview .bar.status-succeeded")).to_have_count(1)
    assert page.evaluate("window.stillTheSamePage") is True
    run.locator("summary").click()
    expect(run).to_contain_text('"message": "count"')  # the result, expanded

    # --- disable with a note, then enable ---------------------------------------------------------
    page.locator("summary", has_text="Disable…").click()
    page.get_by_label("Why is it paused?").fill("Warehouse inventory in progress")
    page.get_by_role("button", name="Disable schedule").click()
    expect(page.locator("#flash")).to_contain_text("Disabled “Inventory snapshot”.")
    expect(page.locator(".pause-note")).to_contain_text("Warehouse inventory in progress")
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("#flash")).to_contain_text("Enabled “Inventory snapshot”.")
    expect(page.locator(".pause-note")).to_have_count(0)

    # --- edit ------------------------------------------------------------------------------------
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Name").fill("Inventory snapshot (5 min)")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name="Inventory snapshot (5 min)", level=1)).to_be_visible()
    expect(page.locator("#flash")).to_contain_text("Saved “Inventory snapshot (5 min)”.")

    # --- delete, then undo -------------------------------------------------------------------------
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete 1 schedule?")).to_be_visible()
    page.get_by_role("button", name="Delete schedule").click()
    expect(page).to_have_url(f"{base}{LIST}")
    expect(page.locator("#flash")).to_contain_text("Deleted “Inventory snapshot (5 min)”.")
    expect(page.locator("#jobs-table")).not_to_contain_text("Inventory snapshot")
    page.locator("#flash").get_by_role("button", name="Undo").click()
    expect(page).to_have_url(detail_url)
    expect(page.locator("#flash")).to_contain_text("back to its previous version")
    expect(page.get_by_role("heading", name="Inventory snapshot (5 min)", level=1)).to_be_visible()


def test_screenshots_of_the_list_and_detail_pages(page: Page, live_server, screenshot):
    base = live_server["url"]
    sign_in(page, base, OWNER)
    rows = page.locator("#jobs-table tbody tr")
    expect(rows.nth(len(live_server["jobs"]) - 1)).to_be_visible()
    # The seeded manual runs finish within a poll or two; wait for their outcome on the list.
    for _ in range(20):
        if page.locator("#jobs-table .badge.status-failed").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    screenshot(page, "list")

    page.goto(f"{base}{LIST}/{live_server['jobs']['Fetch currency rates']}")
    expect(page.locator("#overview svg.chart")).to_be_visible()
    first_failure = page.locator("#run-history li.run", has_text="Failed").first
    first_failure.locator("summary").click()
    expect(first_failure).to_contain_text("unknown currency symbols")
    screenshot(page, "detail")


def test_a_viewer_sees_no_buttons_to_change_anything(page: Page, live_server):
    base = live_server["url"]
    sign_in(page, base, VIEWER)
    expect(page.locator("#jobs-table tbody tr").first).to_be_visible()
    expect(page.get_by_role("link", name="New schedule")).to_have_count(0)
    for name in ("Edit", "Run now", "Disable", "Delete…", "Enable"):
        expect(page.get_by_role("button", name=re.compile(f"^{name}"))).to_have_count(0)
        expect(page.get_by_role("link", name=re.compile(f"^{name}"))).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)

    page.get_by_role("link", name="Daily sales summary").click()
    expect(page.get_by_role("heading", name="Daily sales summary", level=1)).to_be_visible()
    expect(page.get_by_role("group", name="Schedule actions")).to_have_count(0)
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)

    response = page.goto(f"{base}{LIST}/new")
    assert response.status == 403
    expect(page.get_by_role("heading", name=re.compile("403"))).to_be_visible()
