"""Run with input, cancel a running run and run it again, in real Chromium against the live server
(local strategy: the server's own poller runs the targets)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.seed import OWNER
from tests.browser.test_admin_ui import sign_in
from tests.support.http import LIST

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a live server process, and Chromium


def test_an_owner_runs_with_input_cancels_the_run_and_runs_it_again(page: Page, live_server, screenshot):
    base = live_server["url"]
    sign_in(page, base, OWNER)
    page.goto(f"{base}{LIST}/{live_server['jobs']['Partner stock sync']}")

    # --- run with input: a mistake is shown next to the field, nothing typed is lost -------------
    page.get_by_role("link", name="Run with input…").click()
    expect(page.get_by_role("heading", name=re.compile("^Run with input"))).to_be_visible()
    payload = page.get_by_label("Payload")
    expect(payload).to_have_value(re.compile('"fail": "partner API'))  # the schedule's payload, to start from
    payload.fill('{"message": "by hand", "sleep": 30')
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#error-payload")).to_contain_text("not valid JSON")
    expect(payload).to_have_value('{"message": "by hand", "sleep": 30')
    expect(payload).to_have_attribute("aria-invalid", "true")
    payload.fill('{"message": "by hand", "sleep": 30}')
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#flash")).to_contain_text("Queued a run of “Partner stock sync” with your input.")

    # --- cancel it while it runs --------------------------------------------------------------------
    run = page.locator("#run-history li.run").first
    expect(run).to_contain_text("Running", timeout=15_000)
    run.locator("summary").click()
    expect(run).to_contain_text('"message": "by hand"')  # the payload it runs with
    cancel = run.get_by_role("button", name="Cancel run")
    expect(cancel).to_be_visible()
    screenshot(page, "run-cancel")
    page.once("dialog", lambda dialog: dialog.accept())
    cancel.click()
    expect(run.locator(".badge")).to_have_text("Cancelled", timeout=5_000)
    expect(run).to_contain_text(f"Cancelled by{OWNER}")
    expect(run.get_by_role("button", name="Cancel run")).to_have_count(0)
    expect(page.locator("#overview")).to_contain_text("Cancelled")  # the status panel refreshed itself

    # --- run it again, with the payload it ran with ---------------------------------------------------
    run.get_by_role("link", name="Run again…").click()
    expect(page.get_by_role("heading", name=re.compile("^Run again"))).to_be_visible()
    expect(payload).to_have_value(re.compile(r'"message": "by hand",\s+"sleep": 30'))
    payload.fill('{"message": "again, quicker"}')
    screenshot(page, "run-input")
    page.get_by_role("button", name="Run now").click()
    again = page.locator("#run-history li.run").first
    expect(again.locator(".badge")).to_have_text("Succeeded", timeout=15_000)
    again.locator("summary").click()
    expect(again).to_contain_text('"message": "again, quicker"')
