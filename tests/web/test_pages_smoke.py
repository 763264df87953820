"""The main path through the admin pages, on both database backends (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.support.firing import run_queued
from tests.support.http import LIST, as_user, form_fields, new_form, post_form, url


async def test_it_walks_create_run_edit_delete_and_undo(client, app_runtime):
    await as_user(client, app_runtime, "owner@acme.test")
    created = await post_form(client, f"{LIST}/new", new_form(name="Smoke"), page=f"{LIST}/new", follow_redirects=False)
    assert created.status_code == 303
    detail = created.headers["location"]
    job_id = detail.rsplit("/", 1)[1]

    found = (await client.get(f"{LIST}?q=smo&enabled=true&source=user&type=cron&target=command")).text
    assert 'class="job-link">Smoke<' in found

    await post_form(client, url(job_id, "/run"), {})
    await run_queued(app_runtime)
    page = (await client.get(detail)).text
    assert "Succeeded" in page and 'class="bar status-succeeded"' in page
    assert "Succeeded" in (await client.get(f"{LIST}?status=succeeded")).text

    fields = form_fields((await client.get(url(job_id, "/edit"))).text)
    fields["name"] = "Smoke v2"
    assert (await client.post(url(job_id, "/edit"), data=fields, follow_redirects=False)).status_code == 303

    await post_form(client, url(job_id, "/delete"), {})
    assert "It does not run" in (await client.get(detail)).text  # read-only until restored or purged
    await post_form(client, url(job_id, "/undo"), {})
    page = (await client.get(detail)).text
    assert "<h1>Smoke v2</h1>" in page and "Undid the last change" in page
