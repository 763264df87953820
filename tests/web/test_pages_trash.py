"""The Deleted view and a deleted schedule's read-only page: who sees what, one-click restore."""

from __future__ import annotations

import re

from tests.support.factories import make_job
from tests.support.firing import run_queued
from tests.support.http import HTMX, LIST, as_user, post_form, url

DELETED = f"{LIST}/deleted"


async def _deleted(app_runtime, clock, *names: str, by=None):
    jobs = []
    for name in names:
        job = await make_job(app_runtime, name=name)
        clock.advance(minutes=1)
        await app_runtime.scheduler.delete(job.id, by) if by else await app_runtime.scheduler.delete(job.id)
        jobs.append(job)
    return jobs


async def test_the_deleted_view_lists_newest_deletion_first_with_who_and_a_restore_button(client, app_runtime, clock):
    await _deleted(app_runtime, clock, "Old export", "Fresh export")
    await make_job(app_runtime, name="Live export")
    await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(DELETED)).text
    names = re.findall(r'class="job-link">([^<]+)<', page)
    assert names == ["Fresh export", "Old export"]
    assert "2 deleted schedules" in page and "by system" in page and "kept, with its run history" in page
    assert page.count(">Restore<span") == 2 and 'name="_csrf"' in page
    assert 'aria-current="page">Deleted</a>' in page  # the main navigation shows where we are


async def test_viewers_see_the_deleted_view_without_restore_and_may_not_restore(client, app_runtime, clock):
    [job] = await _deleted(app_runtime, clock, "Old export")
    await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(DELETED)).text
    assert "Old export" in page and "Restore" not in page
    assert (await post_form(client, url(job.id, "/restore"), {}, page=DELETED)).status_code == 403
    assert "Restore" not in (await client.get(url(job.id))).text
    assert not await app_runtime.scheduler.exists(job.id)


async def test_another_tenants_deleted_schedules_never_show_and_cannot_be_restored(client, app_runtime, clock):
    [job] = await _deleted(app_runtime, clock, "Acme secret export")
    await as_user(client, app_runtime, "owner@globex.test")
    page = (await client.get(f"{DELETED}?q=secret")).text
    assert "Acme secret export" not in page and "No deleted schedules match" in page
    assert (await client.get(url(job.id))).status_code == 404
    assert (await post_form(client, url(job.id, "/restore"), {}, page=DELETED)).status_code == 404
    assert not await app_runtime.scheduler.exists(job.id)


async def test_search_and_pages_keep_their_state_in_the_url(client, app_runtime, clock):
    await _deleted(app_runtime, clock, *(f"Report {n}" for n in range(12)), "Other")
    await as_user(client, app_runtime, "viewer@acme.test")
    first = (await client.get(f"{DELETED}?q=report&size=10")).text
    assert "12 deleted schedules match" in first and "Other" not in first
    assert 'href="/backend/config/scheduled-jobs/deleted?q=report&amp;page=2&amp;size=10"' in first
    table = await client.get(f"{DELETED}?q=report&size=10&page=2", headers={**HTMX, "HX-Target": "deleted-table"})
    assert "<html" not in table.text and len(re.findall(r'class="job-link"', table.text)) == 2
    assert table.headers["hx-push-url"] == f"{DELETED}?q=report&page=2&size=10"


async def test_one_click_restore_from_the_view_brings_it_back_and_says_when_it_runs(client, app_runtime, clock):
    [job] = await _deleted(app_runtime, clock, "Nightly export")
    await as_user(client, app_runtime, "owner@acme.test")
    response = await post_form(
        client, url(job.id, "/restore"), {"return_to": DELETED}, page=DELETED, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == DELETED
    page = (await client.get(DELETED)).text
    assert "Restored “Nightly export”. Next run: 2026-06-02 09:00:00 CEST." in page
    assert f'href="{url(job.id)}">Open it</a>' in page and "Nothing deleted" in page
    restored = await app_runtime.scheduler.get(job.id)
    assert restored.deleted_at is None
    assert (await app_runtime.scheduler.audit_trail(job.id))[0].actor == "owner@acme.test"


async def test_restoring_twice_says_it_is_no_longer_deleted(client, app_runtime, clock):
    [job] = await _deleted(app_runtime, clock, "Nightly export")
    await app_runtime.scheduler.restore(job.id)  # someone else, a moment earlier
    await as_user(client, app_runtime, "owner@acme.test")
    response = await post_form(
        client, url(job.id, "/restore"), {"return_to": DELETED}, page=DELETED, follow_redirects=True
    )
    assert response.status_code == 200
    assert "Not restored: &#39;Nightly export&#39; is not deleted: there is nothing to restore." in response.text


async def test_a_deleted_schedules_page_is_read_only_with_its_history_and_a_restore_button(client, app_runtime):
    job = await make_job(app_runtime, name="<b>Nightly</b> export")
    await app_runtime.scheduler.trigger(job.id)
    await run_queued(app_runtime)
    await as_user(client, app_runtime, "owner@acme.test")
    await post_form(client, url(job.id, "/delete"), {}, page=url(job.id, "/delete"))
    page = (await client.get(url(job.id))).text
    assert "<strong>Deleted</strong>" in page and "by owner@acme.test" in page and "It does not run" in page
    assert "It is removed for good after 2026-07-01" in page
    assert '<span class="badge deleted">Deleted</span>' in page and "None: deleted" in page
    assert "&lt;b&gt;Nightly&lt;/b&gt; export" in page and "<b>Nightly</b>" not in page
    assert 'class="badge status-succeeded"' in page  # its run history
    assert "<strong>Deleted</strong> by owner@acme.test" in page  # its audit trail
    for gone in ("Run now", "Disable…", "Delete…", ">Edit<"):
        assert gone not in page, gone
    assert f'action="{url(job.id, "/restore")}"' in page
    assert (await client.get(url(job.id, "/edit"))).status_code == 404
    assert (await post_form(client, url(job.id, "/run"), {}, page=url(job.id))).status_code == 404

    restored = await post_form(client, url(job.id, "/restore"), {}, page=url(job.id), follow_redirects=False)
    assert restored.headers["location"] == url(job.id)
    page = (await client.get(url(job.id))).text
    assert "Restored “&lt;b&gt;Nightly&lt;/b&gt; export”." in page and "Run now" in page
    assert "<strong>Restored from Deleted</strong> by owner@acme.test" in page
