"""Creating and editing schedules: fields, live preview, validation next to fields, locking, undo."""

from __future__ import annotations

import re

import pytest

from tests.support.factories import make_job
from tests.support.http import HTMX, LIST, as_user, form_fields, new_form, post_form, url

NEW = f"{LIST}/new"


@pytest.fixture
def db_url(pg_url):
    """PostgreSQL, as in production (see test_pages_list.py)."""
    return pg_url


def error_of(html: str, field: str) -> str:
    """The message shown next to ``field``, checking the control points at it."""
    control = re.search(rf'<(?:input|select|textarea)\b[^>]*\bid="{field}"[^>]*>', html)
    assert control, f"no control {field}"
    assert 'aria-invalid="true"' in control.group(0), control.group(0)
    assert f"error-{field}" in re.search(r'aria-describedby="([^"]*)"', control.group(0)).group(1)
    message = re.search(rf'<p class="field-error" id="error-{field}">([^<]*)</p>', html)
    assert message, f"no error message for {field}"
    return message.group(1)


async def test_every_field_has_a_label(client, app_runtime):
    await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(NEW)).text
    controls = re.findall(r'<(?:input|select|textarea)\b[^>]*\bid="([^"]+)"', page)
    hidden = set(re.findall(r'<input type="hidden" id="([^"]+)"', page))
    for control in set(controls) - hidden:
        assert f'<label for="{control}"' in page or f'<label class="check-label" for="{control}"' in page, control
    for field in (
        "name",
        "description",
        "scope_type",
        "schedule_type",
        "schedule_value",
        "timezone",
        "target",
        "target_payload",
        "require_feature",
        "is_enabled",
        "catch_up_policy",
        "catch_up_window_seconds",
        "overlap_policy",
        "jitter_seconds",
        "timeout_seconds",
        "max_retries",
        "retry_backoff_seconds",
        "start_at",
        "end_at",
        "max_runs",
    ):
        assert f'id="{field}"' in page, field


async def test_targets_come_from_the_registry_and_timezones_are_searchable(client, app_runtime):
    await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(NEW)).text
    schedulable = {f"{t.kind}:{t.name}" for t in app_runtime.registry.schedulable(scopes={"tenant", "organization"})}
    offered = set(re.findall(r'<option value="((?:command|queue):[^"]+)"', page))
    assert offered == schedulable and "command:scheduler.history.cleanup" not in offered
    assert 'list="timezones"' in page and '<option value="Europe/Warsaw"></option>' in page
    # An owner chooses between their organization and their tenant, never the system scope.
    assert '<option value="organization" selected>Organization acme-eu</option>' in page
    assert 'value="system"' not in page


async def test_creating_a_schedule_lands_on_its_page_with_a_message(client, app_runtime):
    await as_user(client, app_runtime, "owner@acme.test")
    response = await post_form(
        client,
        NEW,
        new_form(
            name="Sales summary",
            target="command:reports.sales-summary",
            target_payload='{"period": "week"}',
            timeout_seconds="30",
        ),
        page=NEW,
        follow_redirects=False,
    )
    assert response.status_code == 303
    detail = await client.get(response.headers["location"])
    assert "Created “Sales summary”." in detail.text
    job = (await app_runtime.scheduler.list()).items[0]
    assert (job.scope_type, job.tenant_id, job.organization_id) == ("organization", "acme", "acme-eu")
    assert job.target_command == "reports.sales-summary" and job.target_payload == {"period": "week"}
    assert job.timeout_seconds == 30 and job.timezone == "Europe/Warsaw" and job.created_by == "owner@acme.test"


async def test_errors_appear_next_to_their_fields_and_keep_what_was_typed(client, app_runtime):
    await as_user(client, app_runtime, "owner@acme.test")
    typed = new_form(
        name="Nightly <b>export</b>",
        schedule_value="61 9 * * *",
        timezone="Europe/Warsaw",
        target="",
        target_payload='{"message": ',
        jitter_seconds="lots",
        description="keep me",
    )
    response = await post_form(client, NEW, typed, page=NEW)
    assert response.status_code == 422
    page = response.text
    assert "minute" in error_of(page, "schedule_value")
    assert "choose a command" in error_of(page, "target")
    assert "not valid JSON" in error_of(page, "target_payload")
    assert "whole number" in error_of(page, "jitter_seconds")
    assert 'id="form-errors"' in page and 'role="alert"' in page
    kept = form_fields(page)
    assert kept["name"] == "Nightly <b>export</b>" and kept["description"] == "keep me"
    assert kept["schedule_value"] == "61 9 * * *" and kept["timezone"] == "Europe/Warsaw"
    assert kept["target_payload"] == '{"message": ' and kept["jitter_seconds"] == "lots"
    assert "<b>export</b>" not in page  # escaped, not rendered
    assert (await app_runtime.scheduler.list()).total == 0

    response = await post_form(client, NEW, new_form(timezone="Mars/Olympus"), page=NEW)
    assert "unknown timezone" in error_of(response.text, "timezone")


async def test_an_unknown_target_or_scope_is_refused(client, app_runtime):
    await as_user(client, app_runtime, "owner@acme.test")
    response = await post_form(client, NEW, new_form(target="command:rm-rf"), page=NEW)
    assert response.status_code == 422 and "unknown command" in error_of(response.text, "target")
    response = await post_form(client, NEW, new_form(scope_type="system"), page=NEW)
    assert response.status_code == 422 and "system schedule" in response.text
    assert not (await app_runtime.scheduler.list()).total


async def test_a_superadmin_can_create_system_and_tenant_schedules(client, app_runtime):
    await as_user(client, app_runtime, "root@example.com")
    page = (await client.get(NEW)).text
    assert 'value="system" selected' in page and 'id="tenant_id"' in page
    response = await post_form(
        client,
        NEW,
        new_form(scope_type="tenant", tenant_id="acme", name="Tenant-wide"),
        page=NEW,
        follow_redirects=False,
    )
    assert response.status_code == 303
    job = (await app_runtime.scheduler.list()).items[0]
    assert (job.scope_type, job.tenant_id, job.organization_id) == ("tenant", "acme", None)


async def test_the_preview_describes_the_schedule_and_lists_the_next_slots_in_its_zone(client, app_runtime):
    await as_user(client, app_runtime, "viewer@acme.test")  # viewing rights suffice: it changes nothing
    response = await client.get(
        f"{LIST}/preview",
        params={"schedule_type": "cron", "schedule_value": "30 9 * * MON-FRI", "timezone": "Europe/Warsaw"},
        headers=HTMX,
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert "At 09:30, Monday through Friday" in response.text
    # The test clock says Monday 2026-06-01 12:00 UTC: the next slot is Tuesday 09:30 in Warsaw (CEST).
    slots = re.findall(r"<li><time datetime=\"[^\"]+\">([^<]+)</time>", response.text)
    assert slots[:2] == ["2026-06-02 09:30:00 CEST", "2026-06-03 09:30:00 CEST"] and len(slots) == 5

    interval = await client.get(
        f"{LIST}/preview", params={"schedule_type": "interval", "schedule_value": "1h30m", "timezone": "UTC"}
    )
    assert "Every 1 hour 30 minutes" in interval.text

    bad = await client.get(
        f"{LIST}/preview", params={"schedule_type": "cron", "schedule_value": "* * *", "timezone": "UTC"}
    )
    assert bad.status_code == 200 and 'class="preview-error"' in bad.text
    empty = await client.get(f"{LIST}/preview", params={"schedule_type": "cron", "schedule_value": ""})
    assert "Type a schedule" in empty.text


async def test_the_target_hint_describes_the_choice(client, app_runtime):
    await as_user(client, app_runtime, "owner@acme.test")
    response = await client.get(f"{LIST}/target", params={"target": "queue:currency-rates"}, headers=HTMX)
    assert "Refreshes exchange rates" in response.text and "symbols" in response.text


async def test_editing_keeps_values_saves_changes_and_offers_undo(client, app_runtime):
    job = await make_job(app_runtime, start_at="2026-07-01T08:00", timezone="Europe/Warsaw")
    await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(url(job.id, "/edit"))).text
    fields = form_fields(page)
    assert fields["name"] == "Nightly export" and fields["target"] == "command:demo.echo"
    assert fields["start_at"] == "2026-07-01T08:00"  # shown in the schedule's zone
    assert fields["version"] == "1" and '"message": "hello"' in fields["target_payload"]
    assert "cannot change" in page and 'id="scope_type"' not in page  # scope is locked

    fields.update(name="Nightly export v2", schedule_value="0 10 * * *")
    saved = await client.post(url(job.id, "/edit"), data=fields, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == url(job.id)
    detail = (await client.get(url(job.id))).text
    assert "Saved “Nightly export v2”." in detail and f'action="{url(job.id, "/undo")}"' in detail
    current = await app_runtime.scheduler.get(job.id)
    assert (current.name, current.schedule_value, current.version) == ("Nightly export v2", "0 10 * * *", 2)
    assert current.start_at == job.start_at  # untouched fields stay as they were

    undone = await post_form(client, url(job.id, "/undo"), {}, follow_redirects=False)
    assert undone.status_code == 303
    assert "back to its previous version" in (await client.get(undone.headers["location"])).text
    assert (await app_runtime.scheduler.get(job.id)).name == "Nightly export"


async def test_saving_over_a_newer_version_is_refused_with_a_clear_message(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "owner@acme.test")
    mine = form_fields((await client.get(url(job.id, "/edit"))).text)
    await app_runtime.scheduler.update(job.id, {"description": "changed by a colleague"})  # version 2

    mine["name"] = "My rename"
    response = await client.post(url(job.id, "/edit"), data=mine)
    assert response.status_code == 409
    assert "was changed by someone else" in response.text and "Open the latest version" in response.text
    assert form_fields(response.text)["name"] == "My rename"  # nothing typed is lost
    current = await app_runtime.scheduler.get(job.id)
    assert current.name == "Nightly export" and current.description == "changed by a colleague"


async def test_edit_errors_are_shown_in_place(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "owner@acme.test")
    fields = form_fields((await client.get(url(job.id, "/edit"))).text)
    fields.update(schedule_type="interval", schedule_value="5s", name="")
    response = await client.post(url(job.id, "/edit"), data=fields)
    assert response.status_code == 422
    assert "at least" in error_of(response.text, "schedule_value")
    assert "required" in error_of(response.text, "name")


async def test_who_may_open_and_submit_the_form(client, app_runtime):
    job = await make_job(app_runtime)
    assert (await client.get(NEW, follow_redirects=False)).status_code in (302, 303)
    assert (await client.get(url(job.id, "/edit"), follow_redirects=False)).status_code in (302, 303)
    for email in ("viewer@acme.test", "operator@acme.test"):
        await as_user(client, app_runtime, email)
        assert (await client.get(NEW)).status_code == 403
        assert (await post_form(client, NEW, new_form())).status_code == 403
        assert (await client.get(url(job.id, "/edit"))).status_code == 403
        assert (await post_form(client, url(job.id, "/edit"), new_form(version="1"))).status_code == 403
    await as_user(client, app_runtime, "owner@globex.test")
    assert (await client.get(url(job.id, "/edit"))).status_code == 404
    assert (await post_form(client, url(job.id, "/edit"), new_form(version="1"))).status_code == 404
    assert (await app_runtime.scheduler.get(job.id)).version == 1


async def test_a_tenant_that_does_not_exist_is_refused_next_to_its_field(client, app_runtime):
    await as_user(client, app_runtime, "root@example.com")
    response = await post_form(client, NEW, new_form(scope_type="tenant", tenant_id="acmee", name="Typo"), page=NEW)
    assert response.status_code == 422 and error_of(response.text, "tenant_id") == "there is no tenant &#39;acmee&#39;"
    response = await post_form(
        client,
        NEW,
        new_form(scope_type="organization", tenant_id="globex", organization_id="acme-eu", name="Wrong organization"),
        page=NEW,
    )
    assert "tenant &#39;globex&#39; has no organization &#39;acme-eu&#39;" == error_of(response.text, "organization_id")
    assert not (await app_runtime.scheduler.list()).total
