"""The schedules list: who sees what, search, filters, sort, pagination, htmx fragments, bulk actions."""

from __future__ import annotations

import re

import pytest

from app.domain import listing, service
from app.web.pages.listing import row_key
from tests.support.factories import make_job
from tests.support.firing import run_queued
from tests.support.http import HTMX, LIST, as_user, csrf_from, url


@pytest.fixture
def db_url(pg_url):
    """The pages do not depend on the database backend (the domain tests run on both): PostgreSQL,
    as in production. test_pages_smoke.py walks the main pages on SQLite too."""
    return pg_url


async def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = await client.get(f"{LIST}?q=x", follow_redirects=False)
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith("/login?next=")


async def test_it_lists_schedules_with_every_column(client, app_runtime):
    job = await make_job(app_runtime, name="Nightly export", timezone="Europe/Warsaw")
    client = await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(LIST)).text
    assert f'href="{url(job.id)}"' in page and "Nightly export" in page
    assert "<code>0 9 * * *</code>" in page and "At 09:00" in page  # raw and described
    assert "Europe/Warsaw" in page and "Echo" in page and "acme / acme-eu" in page
    assert "Never" in page  # no last run yet
    assert '<span class="badge on">Enabled</span>' in page
    for column in ("Name", "Schedule", "Timezone", "Target", "Scope", "Next run", "Last run", "Enabled", "Source"):
        assert f">{column}<" in page
    assert "1 schedule" in page


async def test_the_owner_gets_every_action_and_bulk_selection(client, app_runtime):
    job = await make_job(app_runtime)
    client = await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(LIST)).text
    assert "New schedule" in page
    assert f'href="{url(job.id, "/edit")}"' in page
    assert f'action="{url(job.id, "/run")}"' in page
    assert f'action="{url(job.id, "/disable")}"' in page
    assert f'href="{url(job.id, "/delete")}' in page
    assert f'name="ids" value="{job.id}" form="bulk"' in page
    for action in ("enable", "disable", "run", "delete"):
        assert f'name="action" value="{action}"' in page


async def test_a_viewer_sees_the_list_but_no_buttons_to_change_it(client, app_runtime):
    job = await make_job(app_runtime)
    client = await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(LIST)).text
    assert "Nightly export" in page
    assert "New schedule" not in page
    assert url(job.id, "/edit") not in page and url(job.id, "/run") not in page
    assert url(job.id, "/delete") not in page and 'name="ids"' not in page and 'id="bulk"' not in page


async def test_an_operator_may_run_but_not_change(client, app_runtime):
    job = await make_job(app_runtime)
    client = await as_user(client, app_runtime, "operator@acme.test")
    page = (await client.get(LIST)).text
    assert f'action="{url(job.id, "/run")}"' in page and 'value="run"' in page
    assert url(job.id, "/edit") not in page and url(job.id, "/disable") not in page
    assert 'value="delete"' not in page and "New schedule" not in page


async def test_other_tenants_and_system_schedules_stay_invisible(client, app_runtime):
    await make_job(app_runtime, name="Acme export")
    await make_job(app_runtime, name="Housekeeping", scope_type="system", tenant_id=None, organization_id=None)
    client = await as_user(client, app_runtime, "owner@globex.test")
    page = (await client.get(LIST)).text
    assert "Acme export" not in page and "Housekeeping" not in page
    assert "No schedules yet" in page
    root = await as_user(client, app_runtime, "root@example.com")
    page = (await root.get(LIST)).text
    assert "Acme export" in page and "Housekeeping" in page


async def test_search_filters_sort_and_page_live_in_the_url(client, app_runtime):
    for index in range(12):
        await make_job(
            app_runtime,
            name=f"Report {index:02d}",
            schedule_type="interval" if index % 2 else "cron",
            schedule_value="15m" if index % 2 else "0 9 * * *",
        )
    await make_job(
        app_runtime,
        name="Currency rates",
        description="fetches EUR rates",
        target_type="queue",
        target_command=None,
        target_queue="currency-rates",
    )
    client = await as_user(client, app_runtime, "owner@acme.test")

    found = (await client.get(f"{LIST}?q=eur")).text  # description, case-insensitive
    assert "Currency rates" in found and "Report 00" not in found
    assert 'value="eur"' in found  # the search box keeps it

    queues = (await client.get(f"{LIST}?target=queue")).text
    assert "Currency rates" in queues and "Report" not in queues
    intervals = (await client.get(f"{LIST}?type=interval&size=10")).text
    assert intervals.count('class="job-link"') == 6 and "Report 01" in intervals and "Report 00" not in intervals

    first = (await client.get(f"{LIST}?size=10&sort=name&order=desc")).text
    names = re.findall(r'class="job-link">([^<]+)<', first)
    assert names[0] == "Report 11" and len(names) == 10
    assert 'aria-sort="descending"' in first
    assert "Showing 1–10 of 13" in first
    assert f'href="{LIST}?order=desc&amp;page=2&amp;size=10"' in first

    second = (await client.get(f"{LIST}?size=10&sort=name&order=desc&page=2")).text
    assert re.findall(r'class="job-link">([^<]+)<', second) == ["Report 01", "Report 00", "Currency rates"]
    assert 'aria-current="page"' in second and "Showing 11–13 of 13" in second


async def test_unknown_filter_values_are_ignored_not_errors(client, app_runtime):
    await make_job(app_runtime)
    client = await as_user(client, app_runtime, "owner@acme.test")
    response = await client.get(f"{LIST}?enabled=maybe&sort=password&size=5000&page=-3&status=<x>")
    assert response.status_code == 200 and "Nightly export" in response.text


async def test_an_htmx_request_gets_only_the_table(client, app_runtime):
    await make_job(app_runtime)
    client = await as_user(client, app_runtime, "owner@acme.test")
    fragment = await client.get(f"{LIST}?q=night&sort=nextRunAt", headers={**HTMX, "HX-Target": "jobs-table"})
    assert fragment.status_code == 200
    assert "HX-Request" in fragment.headers["vary"]
    body = fragment.text
    assert body.lstrip().startswith("<input") and 'id="jobs-table"' in body and "Nightly export" in body
    assert "<html" not in body and 'id="filters"' not in body
    # The filter form outside the table learns the new sort (out-of-band swap).
    assert 'id="f-sort" name="sort" value="nextRunAt" form="filters" hx-swap-oob="true"' in body
    # Back button after the history cache was evicted: the full page.
    restore = await client.get(LIST, headers={**HTMX, "HX-Target": "jobs-table", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


async def test_empty_and_no_results_states_say_what_to_do(client, app_runtime):
    client = await as_user(client, app_runtime, "owner@acme.test")
    empty = (await client.get(LIST)).text
    assert "No schedules yet" in empty and "Create your first schedule" in empty
    viewer = await as_user(client, app_runtime, "viewer@acme.test")
    assert "Create your first schedule" not in (await viewer.get(LIST)).text
    await make_job(app_runtime)
    client = await as_user(client, app_runtime, "owner@acme.test")
    none = (await client.get(f"{LIST}?q=zzz")).text
    assert "No schedules match" in none and "“zzz”" in none and "Clear search and filters" in none
    beyond = (await client.get(f"{LIST}?page=9")).text
    assert "This page is empty" in beyond


async def test_counts_past_the_cap_are_shown_as_a_floor(client, app_runtime, monkeypatch):
    monkeypatch.setattr(listing, "COUNT_CAP", 3)
    monkeypatch.setattr(service, "COUNT_CAP", 3)
    for index in range(5):
        await make_job(app_runtime, name=f"Job {index}")
    client = await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(f"{LIST}?size=10")).text
    assert "3+ schedules" in page and "of 3+" in page


async def test_names_and_descriptions_are_escaped(client, app_runtime):
    await make_job(app_runtime, name='<script>alert("x")</script>', description="<img src=x onerror=alert(1)>")
    client = await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(LIST)).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


# ----- bulk actions ---------------------------------------------------------------------------


async def _bulk(client, action: str, ids: list[str], **extra):
    token = csrf_from((await client.get(LIST)).text)
    data = {"_csrf": token, "action": action, "ids": ids, "return_to": f"{LIST}?q=job", **extra}
    return await client.post(f"{LIST}/bulk", data=data, follow_redirects=False)


async def test_bulk_disable_enable_and_run(client, app_runtime):
    jobs = [await make_job(app_runtime, name=f"Job {i}") for i in range(3)]
    ids = [job.id for job in jobs[:2]]
    client = await as_user(client, app_runtime, "owner@acme.test")

    response = await _bulk(client, "disable", ids)
    assert response.status_code == 303 and response.headers["location"] == f"{LIST}?q=job"
    page = (await client.get(response.headers["location"])).text
    assert "Disabled 2 schedules." in page
    assert [j.is_enabled for j in [await app_runtime.scheduler.get(i) for i in ids]] == [False, False]
    assert (await app_runtime.scheduler.get(jobs[2].id)).is_enabled

    await _bulk(client, "enable", ids)
    assert all([(await app_runtime.scheduler.get(i)).is_enabled for i in ids])

    await _bulk(client, "run", ids)
    for job_id in ids:
        assert (await app_runtime.scheduler.runs(job_id)).items[0].trigger == "manual"


async def test_bulk_delete_asks_first_and_can_be_undone(client, app_runtime):
    jobs = [await make_job(app_runtime, name=f"Job {i}") for i in range(2)]
    ids = [job.id for job in jobs]
    client = await as_user(client, app_runtime, "owner@acme.test")
    confirm = await _bulk(client, "delete", ids)
    assert confirm.status_code == 200
    assert "Delete 2 schedules?" in confirm.text and "Job 0" in confirm.text and "Job 1" in confirm.text
    assert await app_runtime.scheduler.exists(ids[0])

    done = await _bulk(client, "delete", ids, confirmed="yes")
    page = (await client.get(done.headers["location"])).text
    assert "Deleted 2 schedules." in page and 'value="undo"' in page
    assert not await app_runtime.scheduler.exists(ids[0])

    undone = await _bulk(client, "undo", ids)
    assert "Restored 2 schedules." in (await client.get(undone.headers["location"])).text
    assert await app_runtime.scheduler.exists(ids[0]) and await app_runtime.scheduler.exists(ids[1])


async def test_bulk_actions_respect_permissions_and_scope(client, app_runtime):
    job = await make_job(app_runtime)
    viewer = await as_user(client, app_runtime, "viewer@acme.test")
    assert (await _bulk(viewer, "disable", [job.id])).status_code == 403
    assert (await _bulk(viewer, "run", [job.id])).status_code == 403
    operator = await as_user(client, app_runtime, "operator@acme.test")
    assert (await _bulk(operator, "delete", [job.id])).status_code == 403
    assert (await _bulk(operator, "run", [job.id])).status_code == 303

    outsider = await as_user(client, app_runtime, "owner@globex.test")
    response = await _bulk(outsider, "disable", [job.id])
    assert "1 schedule could not be changed" in (await outsider.get(response.headers["location"])).text
    assert (await app_runtime.scheduler.get(job.id)).is_enabled


async def test_bulk_without_a_selection_explains(client, app_runtime):
    client = await as_user(client, app_runtime, "owner@acme.test")
    response = await _bulk(client, "enable", [])
    assert "Select at least one schedule first." in (await client.get(response.headers["location"])).text


@pytest.mark.parametrize("return_to", ["https://evil.example/", "//evil.example"])
async def test_bulk_never_redirects_off_site(client, app_runtime, return_to):
    job = await make_job(app_runtime)
    client = await as_user(client, app_runtime, "owner@acme.test")
    response = await _bulk(client, "enable", [job.id], return_to=return_to)
    assert response.headers["location"] == LIST


def list_live_params(answer: str) -> list[tuple[str, str]]:
    """What an open list sends when it asks for fresh times: the rows it shows and its digest."""
    live = answer[answer.index('<div id="list-live"') :]
    live = live[: live.index("</div>")]
    return re.findall(r'name="(shown|seen)" value="([^"]*)"', live)


async def test_an_open_list_gets_fresh_times_for_its_rows_and_nothing_else(client, app_runtime):
    due = await make_job(app_runtime, name="Every five", schedule_value="*/5 * * * *")
    other = await make_job(app_runtime, name="Nine o'clock")
    hidden = await make_job(app_runtime, name="Globex job", tenant_id="globex", organization_id="globex-us")
    client = await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(LIST)).text
    params = list_live_params(page)
    assert ("shown", due.id) in params and ("shown", other.id) in params
    ask = {**HTMX, "HX-Target": "list-live"}
    assert (await client.get(LIST, params=params, headers=ask)).status_code == 204

    app_runtime.clock.advance(minutes=5)
    await run_queued(app_runtime)
    fresh = await client.get(LIST, params=params, headers=ask)
    assert fresh.status_code == 200 and "<html" not in fresh.text and "<tr" not in fresh.text
    cells = re.findall(r'<td class="nowrap" id="(next|last)-(\w+)" hx-swap-oob="true">(.*?)</td>', fresh.text, re.S)
    assert len(cells) == 4  # the two cells of each row shown, nothing else
    last_of_due = next(html for kind, key, html in cells if kind == "last" and key == row_key(due.id))
    assert "Succeeded" in last_of_due and "just now" in last_of_due
    seen = re.search(r'id="list-seen" name="seen" value="(\w+)"', fresh.text).group(1)
    again = [(name, seen if name == "seen" else value) for name, value in params]
    assert (await client.get(LIST, params=again, headers=ask)).status_code == 204

    # Rows of another tenant, unknown or malformed ids are simply not answered for.
    foreign = [("shown", hidden.id), ("shown", "nope"), ("shown", "x" * 500), ("seen", "")]
    answer = await client.get(LIST, params=foreign, headers=ask)
    assert answer.status_code == 200 and "<td" not in answer.text
