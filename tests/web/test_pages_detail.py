"""A schedule's page: status, configuration, run history (live), chart, audit trail, and its actions."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.persistence.models import ScheduledJob
from tests.support.factories import make_job
from tests.support.firing import run_queued
from tests.support.http import HTMX, LIST, as_user, csrf_from, post_form, url


@pytest.fixture
def db_url(pg_url):
    """PostgreSQL, as in production (see test_pages_list.py)."""
    return pg_url


async def test_it_shows_configuration_status_and_next_run_in_the_schedules_zone(client, app_runtime):
    job = await make_job(
        app_runtime,
        timezone="Europe/Warsaw",
        max_retries=2,
        timeout_seconds=60,
        target_payload={"message": "hi <there>"},
    )
    await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(url(job.id))).text
    assert "<h1>Nightly export</h1>" in page and "Exports yesterday&#39;s orders" in page
    # The clock says 2026-06-01 12:00 UTC; 09:00 in Warsaw (CEST, UTC+2) next happens tomorrow.
    assert "2026-06-02 09:00:00 CEST" in page and "in 19 hours" in page
    assert "At 09:00" in page and "Europe/Warsaw" in page and "Echo" in page
    assert "2, first after 30 s (doubling)" in page and "60 s" in page
    assert "&#34;message&#34;: &#34;hi &lt;there&gt;&#34;" in page  # payload, pretty and escaped
    assert "No runs yet." in page and "Created" in page  # history and audit trail


async def test_actions_are_shown_only_to_those_who_may_use_them(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "owner@acme.test")
    owner = (await client.get(url(job.id))).text
    for marker in (url(job.id, "/edit"), url(job.id, "/run"), url(job.id, "/disable"), url(job.id, "/delete")):
        assert marker in owner
    await as_user(client, app_runtime, "operator@acme.test")
    operator = (await client.get(url(job.id))).text
    assert url(job.id, "/run") in operator and url(job.id, "/edit") not in operator
    assert url(job.id, "/disable") not in operator and url(job.id, "/delete") not in operator
    await as_user(client, app_runtime, "viewer@acme.test")
    viewer = (await client.get(url(job.id))).text
    assert 'aria-label="Schedule actions"' not in viewer and url(job.id, "/run") not in viewer


async def test_outsiders_get_404_and_anonymous_visitors_the_login(client, app_runtime):
    job = await make_job(app_runtime)
    system = await make_job(app_runtime, scope_type="system", tenant_id=None, organization_id=None)
    response = await client.get(url(job.id), follow_redirects=False)
    assert response.status_code in (302, 303) and response.headers["location"].startswith("/login")
    await as_user(client, app_runtime, "owner@globex.test")
    assert (await client.get(url(job.id))).status_code == 404
    assert "Nightly export" not in (await client.get(url(job.id))).text
    await as_user(client, app_runtime, "owner@acme.test")
    assert (await client.get(url(system.id))).status_code == 404
    assert (await client.get(url("no-such-schedule"))).status_code == 404


async def test_run_now_queues_a_run_and_the_history_shows_it(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "operator@acme.test")
    response = await post_form(client, url(job.id, "/run"), {}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == url(job.id)
    page = (await client.get(url(job.id))).text
    assert "Queued a run of “Nightly export”." in page
    run = (await app_runtime.scheduler.runs(job.id)).items[0]
    assert run.trigger == "manual" and run.triggered_by == "operator@acme.test"
    # Still queued: the row polls itself.
    assert f'hx-get="{url(job.id, "/runs/" + run.id)}" hx-trigger="every 1s"' in page


async def test_run_now_through_htmx_swaps_in_the_history_and_the_flash(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "owner@acme.test")
    response = await post_form(
        client,
        url(job.id, "/run"),
        {"status": "", "trigger": ""},
        page=url(job.id),
        headers={**HTMX, "HX-Target": "run-history"},
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert 'id="run-history"' in response.text and "Queued" in response.text
    assert 'id="flash" class="flashes" role="status" hx-swap-oob="true"' in response.text
    assert response.headers["hx-replace-url"] == url(job.id)


async def test_a_running_run_polls_until_it_has_finished(client, app_runtime):
    job = await make_job(app_runtime)
    run = await app_runtime.scheduler.trigger(job.id)
    await as_user(client, app_runtime, "viewer@acme.test")
    path = url(job.id, f"/runs/{run.id}")
    queued = await client.get(path, headers=HTMX)
    assert queued.status_code == 200 and 'hx-trigger="every 1s"' in queued.text
    assert "hx-trigger" not in queued.headers

    await run_queued(app_runtime)
    done = await client.get(path, headers=HTMX)
    assert done.status_code == 286  # htmx: stop polling
    assert done.headers["hx-trigger"] == "runFinished"  # the page asks for its news at once
    assert "every 1s" not in done.text and "Succeeded" in done.text and "&#34;echo&#34;" in done.text


def seen(*answers: str) -> dict[str, str]:
    """What an open page sends when it asks for news, after these answers (the page first):
    its digests, history filters and page, which each answer replaces out of band."""
    state: dict[str, str] = {}
    for answer in answers:
        for block in re.findall(r'<div id="seen-\w+" hx-swap-oob="true">(.*?)</div>', answer, re.S):
            state.update(re.findall(r'name="(\w+)" value="([^"]*)"', block))
    return state


async def live(client, job_id: str, *answers: str):
    return await client.get(url(job_id), params=seen(*answers), headers={**HTMX, "HX-Target": "live"})


async def test_an_open_page_gets_what_changed_and_nothing_else(client, app_runtime):
    job = await make_job(app_runtime, schedule_value="*/5 * * * *")
    await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(url(job.id))).text
    assert "No runs yet." in page and 'hx-trigger="every 5s, runFinished from:body"' in page

    unchanged = await live(client, job.id, page)
    assert unchanged.status_code == 204 and unchanged.text == ""

    # The slot passes and the poller runs it: the open page gets the new run and the new overview.
    app_runtime.clock.advance(minutes=5)
    await run_queued(app_runtime)
    news = await live(client, job.id, page)
    assert news.status_code == 200 and "<html" not in news.text
    assert '<div id="run-history" hx-swap-oob="true">' in news.text, news.text
    history = news.text[news.text.index('<div id="run-history" hx-swap-oob="true">') :]
    assert history.count('<li id="run-') == 1 and "Succeeded" in history
    overview = news.text[news.text.index('<section id="overview"') : news.text.index("</section>")]
    assert 'hx-swap-oob="true"' in overview and "Succeeded" in overview and "status-succeeded" in overview
    assert "in 5 minutes" in overview  # the next slot moved on
    # It carries what the page has now seen: asked again with it, nothing more to send.
    assert (await live(client, job.id, page, news.text)).status_code == 204


async def test_the_overview_and_the_history_never_contradict_each_other(client, app_runtime):
    job = await make_job(app_runtime)
    run = await app_runtime.scheduler.trigger(job.id)
    await run_queued(app_runtime)
    # The schedule row still says "running" (a run's bookkeeping lagging behind its outcome):
    # the page's last run comes from the same read as its history, which says it succeeded.
    async with app_runtime.sessions.begin() as session:
        await session.execute(sa.update(ScheduledJob).where(ScheduledJob.id == job.id).values(last_status="running"))
    await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(url(job.id))).text
    start = page.index('<section id="overview"')
    overview = page[start : page.index("</section>", start)]
    assert "status-succeeded" in overview and "status-running" not in overview
    assert f'id="run-{run.id}"' in page


async def test_an_older_history_page_is_left_as_it_is(client, app_runtime):
    job = await make_job(app_runtime)
    for _ in range(21):
        await app_runtime.scheduler.trigger(job.id)
    await run_queued(app_runtime)
    await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(url(job.id) + "?runs_page=2")).text
    await app_runtime.scheduler.trigger(job.id)
    await run_queued(app_runtime)
    news = await live(client, job.id, page)
    assert 'id="run-history"' not in news.text and 'id="overview"' in news.text  # the chart moved on


async def test_an_open_page_of_a_schedule_deleted_meanwhile_says_so(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(url(job.id))).text
    await app_runtime.scheduler.delete(job.id)
    news = await live(client, job.id, page)
    assert news.status_code == 200 and 'class="badge deleted"' in news.text and "None: deleted" in news.text


async def test_a_polled_run_of_a_schedule_deleted_meanwhile_goes_on_until_it_ends(client, app_runtime):
    job = await make_job(app_runtime)
    run = await app_runtime.scheduler.trigger(job.id)
    await app_runtime.scheduler.delete(job.id)
    await as_user(client, app_runtime, "viewer@acme.test")
    path = url(job.id, f"/runs/{run.id}")
    queued = await client.get(path, headers=HTMX)
    assert queued.status_code == 200 and 'hx-trigger="every 1s"' in queued.text
    await run_queued(app_runtime)
    done = await client.get(path, headers=HTMX)
    assert done.status_code == 286 and "Skipped" in done.text and "the schedule was deleted" in done.text


async def test_failed_runs_expand_to_their_error_and_stack(client, app_runtime):
    job = await make_job(app_runtime, target_payload={"fail": "supplier <API> down"})
    await app_runtime.scheduler.trigger(job.id)
    await run_queued(app_runtime)
    await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(url(job.id))).text
    assert "<details>" in page and "RuntimeError: supplier &lt;API&gt; down" in page
    assert "Stack trace" in page and "Traceback" in page
    assert 'class="bar status-failed"' in page and "Durations of the last 1 runs: 1 failed." in page


async def test_history_filters_and_pages(client, app_runtime):
    job = await make_job(app_runtime)
    for _ in range(22):
        await app_runtime.scheduler.trigger(job.id)
        app_runtime.clock.advance(minutes=1)
    await run_queued(app_runtime)
    failing = await make_job(app_runtime, name="Failing", target_payload={"fail": "no"})
    await app_runtime.scheduler.trigger(failing.id)
    await run_queued(app_runtime)
    await as_user(client, app_runtime, "viewer@acme.test")

    page = (await client.get(url(job.id))).text
    assert page.count('<li id="run-') == 20 and "Page 1 of 2" in page and "22 runs" in page
    older = await client.get(url(job.id) + "?runs_page=2", headers={**HTMX, "HX-Target": "run-history"})
    assert "<html" not in older.text and older.text.count('<li id="run-') == 2
    assert "Vary" in older.headers or "vary" in older.headers

    none = (await client.get(url(job.id) + "?status=failed")).text
    assert "No runs match these filters." in none and '<option value="failed" selected>' in none
    manual = (await client.get(url(job.id) + "?trigger=manual&status=succeeded")).text
    assert manual.count('<li id="run-') == 20
    assert (await client.get(url(failing.id) + "?status=failed")).text.count('<li id="run-') == 1


async def test_disable_with_a_note_then_enable(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "owner@acme.test")
    response = await post_form(client, url(job.id, "/disable"), {"note": "supplier API down"}, follow_redirects=False)
    assert response.status_code == 303
    page = (await client.get(url(job.id))).text
    assert "Disabled “Nightly export”." in page
    assert "Paused by owner@acme.test" in page and "“supplier API down”" in page
    assert f'action="{url(job.id, "/enable")}"' in page and "None while disabled" in page
    await post_form(client, url(job.id, "/enable"), {})
    page = (await client.get(url(job.id))).text
    assert "Enabled “Nightly export”. Next run: 2026-06-02 09:00:00 CEST." in page
    assert "Paused by" not in page
    trail = re.findall(r"<strong>(Enabled|Disabled|Created)</strong>", page)
    assert trail == ["Enabled", "Disabled", "Created"]


async def test_delete_asks_first_then_offers_undo(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "owner@acme.test")
    confirm = await client.get(url(job.id, "/delete"))
    assert confirm.status_code == 200 and "Delete 1 schedule?" in confirm.text
    response = await post_form(
        client, url(job.id, "/delete"), {"return_to": url(job.id)}, page=url(job.id, "/delete"), follow_redirects=False
    )
    assert response.headers["location"] == LIST  # its own page is gone
    page = (await client.get(LIST)).text
    assert "Deleted “Nightly export”." in page and f'action="{url(job.id, "/undo")}"' in page
    deleted = await client.get(url(job.id))  # read-only now, with a Restore button (tests/web/test_pages_trash.py)
    assert deleted.status_code == 200 and "It does not run" in deleted.text
    # The flash is shown once.
    assert "Deleted “Nightly export”." not in (await client.get(LIST)).text

    undone = await post_form(client, url(job.id, "/undo"), {}, follow_redirects=False)
    assert undone.headers["location"] == url(job.id)
    page = (await client.get(url(job.id))).text
    assert "back to its previous version" in page and "Undid the last change" in page


async def test_the_audit_trail_shows_what_changed(client, app_runtime):
    job = await make_job(app_runtime)
    await app_runtime.scheduler.update(job.id, {"schedule_value": "0 10 * * *", "name": "Renamed"})
    await as_user(client, app_runtime, "viewer@acme.test")
    page = (await client.get(url(job.id))).text
    assert "<strong>Edited</strong> by system" in page
    assert "<del>0 9 * * *</del>" in page and "<ins>0 10 * * *</ins>" in page
    assert "<del>Nightly export</del>" in page and "<ins>Renamed</ins>" in page


@pytest.mark.parametrize("action", ["run", "enable", "disable", "delete", "undo"])
async def test_actions_are_refused_to_those_who_may_not(client, app_runtime, action):
    job = await make_job(app_runtime)
    path = url(job.id, f"/{action}")
    assert (await client.post(path, data={}, follow_redirects=False)).status_code == 403  # no CSRF token, no session
    await as_user(client, app_runtime, "viewer@acme.test")
    assert (await post_form(client, path, {})).status_code == 403
    await as_user(client, app_runtime, "owner@globex.test")
    assert (await post_form(client, path, {})).status_code == 404
    if action != "run":
        await as_user(client, app_runtime, "operator@acme.test")
        assert (await post_form(client, path, {})).status_code == 403
    current = await app_runtime.scheduler.get(job.id)
    assert current.version == 1 and (await app_runtime.scheduler.runs(job.id)).total == 0


async def test_anonymous_visitors_are_sent_to_sign_in_for_every_page_and_action(client, app_runtime):
    job = await make_job(app_runtime)
    run = await app_runtime.scheduler.trigger(job.id)
    for path in (
        LIST,
        f"{LIST}/new",
        url(job.id),
        url(job.id, "/edit"),
        url(job.id, "/delete"),
        url(job.id, f"/runs/{run.id}"),
        f"{LIST}/preview?schedule_value=@daily",
        f"{LIST}/target",
    ):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code in (302, 303) and response.headers["location"].startswith("/login"), path
    token = csrf_from((await client.get("/login")).text)  # a real token, but no session
    for path in (
        f"{LIST}/new",
        url(job.id, "/edit"),
        url(job.id, "/run"),
        url(job.id, "/enable"),
        url(job.id, "/disable"),
        url(job.id, "/delete"),
        url(job.id, "/undo"),
        f"{LIST}/bulk",
    ):
        response = await client.post(
            path, data={"_csrf": token, "action": "enable", "ids": [job.id]}, follow_redirects=False
        )
        assert response.status_code in (302, 303) and response.headers["location"].startswith("/login"), path
    htmx = await client.get(url(job.id), headers=HTMX)
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/login"
    assert (await app_runtime.scheduler.get(job.id)).version == 1


async def test_confirm_delete_page_needs_the_manage_permission(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "viewer@acme.test")
    assert (await client.get(url(job.id, "/delete"))).status_code == 403
    await as_user(client, app_runtime, "owner@globex.test")
    assert (await client.get(url(job.id, "/delete"))).status_code == 404


async def test_the_name_is_escaped_everywhere_on_the_page(client, app_runtime):
    job = await make_job(app_runtime, name="<img src=x onerror=alert(1)>", description="<script>x()</script>")
    await as_user(client, app_runtime, "owner@acme.test")
    for path in (url(job.id), url(job.id, "/edit"), url(job.id, "/delete")):
        page = (await client.get(path)).text
        assert "<img src=x" not in page and "<script>x()" not in page, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    await post_form(client, url(job.id, "/delete"), {})
    flash = (await client.get(LIST)).text
    assert "Deleted “&lt;img src=x onerror=alert(1)&gt;”." in flash and "<img src=x" not in flash


async def test_forms_in_an_open_page_do_not_count_as_news(client, app_runtime):
    """A queued run offers Cancel (a form with its CSRF token, masked afresh on every render):
    nothing changed, so nothing is sent."""
    job = await make_job(app_runtime)
    await app_runtime.scheduler.trigger(job.id)
    await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(url(job.id))).text
    assert "Cancel run" in page
    assert (await live(client, job.id, page)).status_code == 204
