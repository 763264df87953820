"""Schedules through the JSON API: create, read, list, change (optimistic locking), pause,
trigger, delete, audit and undo."""

from __future__ import annotations

import pytest

from tests.support.http import API

OWNER = "owner@acme.test"
NEW = {
    "name": "Hourly rates",
    "scheduleValue": "0 * * * *",
    "scopeType": "organization",
    "tenantId": "acme",
    "organizationId": "acme-eu",
    "targetType": "queue",
    "targetQueue": "currency-rates",
    "targetPayload": {"base": "EUR"},
    "timezone": "Europe/Warsaw",
}


@pytest.fixture
def owner(client, bearer):
    """The client, acting as the acme owner."""
    client.headers.update(bearer(OWNER))
    return client


async def test_create_answers_201_with_location_etag_and_camel_case_fields(owner, clock):
    response = await owner.post(f"{API}/jobs", json=NEW)
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["location"] == f"{API}/jobs/{job['id']}"
    assert response.headers["etag"] == '"1"'
    assert job["scheduleValue"] == "0 * * * *" and job["targetQueue"] == "currency-rates"
    assert job["targetPayload"] == {"base": "EUR"} and job["isEnabled"] is True and job["version"] == 1
    assert job["nextRunAt"] == "2026-06-01T13:00:00Z"  # the next whole hour after the clock's 12:00 UTC
    assert job["createdBy"] == OWNER
    again = await owner.get(response.headers["location"])
    assert again.status_code == 200 and again.json() == job


async def test_create_with_an_id_and_the_id_taken(owner):
    first = await owner.post(f"{API}/jobs", json={**NEW, "id": "rates:acme-eu"})
    assert first.status_code == 201 and first.json()["id"] == "rates:acme-eu"
    taken = await owner.post(f"{API}/jobs", json={**NEW, "id": "rates:acme-eu"})
    assert taken.status_code == 422
    assert "already exists" in taken.json()["errors"]["id"]


async def test_list_filters_sorts_and_pages(owner, app_runtime, job):
    for name in ("Alpha", "Beta", "Gamma"):
        created = await owner.post(f"{API}/jobs", json={**NEW, "name": name})
        assert created.status_code == 201
    await owner.post(f"{API}/jobs/{job.id}/disable")
    page = (await owner.get(f"{API}/jobs", params={"pageSize": 2, "sort": "name", "order": "desc"})).json()
    assert [i["name"] for i in page["items"]] == ["Gamma", "Daily sales report"]
    assert page["total"] == 4 and page["page"] == 1 and page["pageSize"] == 2 and page["totalExact"] is True
    second = (await owner.get(f"{API}/jobs", params={"pageSize": 2, "page": 2, "sort": "name", "order": "desc"})).json()
    assert [i["name"] for i in second["items"]] == ["Beta", "Alpha"]
    disabled = (await owner.get(f"{API}/jobs", params={"isEnabled": "false"})).json()
    assert [i["id"] for i in disabled["items"]] == [job.id]
    queues = (await owner.get(f"{API}/jobs", params={"targetType": "queue", "search": "alp"})).json()
    assert [i["name"] for i in queues["items"]] == ["Alpha"]
    commands = (await owner.get(f"{API}/jobs", params={"targetType": "command", "scheduleType": "cron"})).json()
    assert [i["id"] for i in commands["items"]] == [job.id]
    beyond = (await owner.get(f"{API}/jobs", params={"page": 9})).json()
    assert beyond["items"] == [] and beyond["total"] == 4


async def test_patch_changes_only_the_fields_sent(owner, job):
    response = await owner.patch(f"{API}/jobs/{job.id}", json={"scheduleValue": "30 6 * * 1-5", "jitterSeconds": 5})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["scheduleValue"] == "30 6 * * 1-5" and changed["jitterSeconds"] == 5
    assert changed["name"] == job.name and changed["targetPayload"] == {"period": "day"}
    assert changed["version"] == 2 and response.headers["etag"] == '"2"'
    cleared = await owner.patch(f"{API}/jobs/{job.id}", json={"description": None, "timeoutSeconds": None})
    assert cleared.status_code == 200 and cleared.json()["description"] == ""


async def test_if_match_makes_a_change_conditional_412_when_stale(owner, app_runtime, job):
    assert (
        await owner.patch(f"{API}/jobs/{job.id}", json={"name": "A"}, headers={"If-Match": '"1"'})
    ).status_code == 200
    # Someone else's edit moves the version on; a change based on version 2 now fails.
    await app_runtime.scheduler.update(job.id, {"name": "Someone else"})
    stale = await owner.patch(f"{API}/jobs/{job.id}", json={"name": "B"}, headers={"If-Match": '"2"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert "changed by someone else" in stale.json()["detail"]
    assert (await owner.get(f"{API}/jobs/{job.id}")).json()["name"] == "Someone else"
    weak = await owner.patch(f"{API}/jobs/{job.id}", json={"name": "C"}, headers={"If-Match": 'W/"3"'})
    assert weak.status_code == 200 and weak.json()["version"] == 4


async def test_the_version_field_works_like_if_match(owner, job):
    stale = await owner.patch(f"{API}/jobs/{job.id}", json={"name": "B", "version": 7})
    assert stale.status_code == 412
    fresh = await owner.patch(f"{API}/jobs/{job.id}", json={"name": "B", "version": 1})
    assert fresh.status_code == 200


@pytest.mark.parametrize(
    "headers,body,status",
    [
        ({"If-Match": "not-a-version"}, {"name": "x"}, 400),
        ({"If-Match": '"1", "2"'}, {"name": "x"}, 400),
        ({"If-Match": '"1"'}, {"name": "x", "version": 2}, 400),
        ({"If-Match": "*"}, {"name": "x"}, 200),
    ],
)
async def test_if_match_must_be_one_version(owner, job, headers, body, status):
    response = await owner.patch(f"{API}/jobs/{job.id}", json=body, headers=headers)
    assert response.status_code == status, response.text


async def test_delete_enable_and_disable_honour_if_match_too(owner, job):
    assert (await owner.post(f"{API}/jobs/{job.id}/disable", headers={"If-Match": '"9"'})).status_code == 412
    assert (await owner.delete(f"{API}/jobs/{job.id}", headers={"If-Match": '"9"'})).status_code == 412
    assert (await owner.post(f"{API}/jobs/{job.id}/disable", headers={"If-Match": '"1"'})).status_code == 200
    assert (await owner.post(f"{API}/jobs/{job.id}/enable", headers={"If-Match": '"1"'})).status_code == 412
    assert (await owner.post(f"{API}/jobs/{job.id}/enable", headers={"If-Match": '"2"'})).status_code == 200


async def test_disable_with_a_note_pauses_and_enable_resumes(owner, job):
    paused = await owner.post(f"{API}/jobs/{job.id}/disable", json={"note": "supplier maintenance"})
    assert paused.status_code == 200
    body = paused.json()
    assert body["isEnabled"] is False and body["pauseNote"] == "supplier maintenance"
    assert body["pausedBy"] == OWNER and body["pausedAt"] and body["nextRunAt"] is None
    too_long = await owner.post(f"{API}/jobs/{job.id}/disable", json={"note": "x" * 501})
    assert too_long.status_code == 422 and "note" in too_long.json()["errors"]
    resumed = (await owner.post(f"{API}/jobs/{job.id}/enable")).json()
    assert resumed["isEnabled"] is True and resumed["pauseNote"] is None and resumed["nextRunAt"]


async def test_trigger_queues_a_manual_run_and_points_at_it(owner, job):
    response = await owner.post(f"{API}/jobs/{job.id}/trigger")
    assert response.status_code == 202
    run = response.json()
    assert run["trigger"] == "manual" and run["status"] == "queued" and run["triggeredBy"] == OWNER
    assert response.headers["location"] == f"{API}/runs/{run['id']}"
    assert (await owner.get(response.headers["location"])).json()["id"] == run["id"]


async def test_delete_then_undo_brings_the_schedule_back(owner, job):
    assert (await owner.delete(f"{API}/jobs/{job.id}")).status_code == 204
    assert (await owner.get(f"{API}/jobs/{job.id}")).status_code == 404
    assert (await owner.get(f"{API}/jobs/{job.id}/runs")).status_code == 200  # history stays
    restored = await owner.post(f"{API}/jobs/{job.id}/undo")
    assert restored.status_code == 200 and restored.json()["name"] == job.name
    assert (await owner.get(f"{API}/jobs/{job.id}")).status_code == 200


async def test_undo_reverts_the_last_edit_and_the_audit_trail_shows_it(owner, job):
    await owner.patch(f"{API}/jobs/{job.id}", json={"scheduleValue": "*/5 * * * *", "name": "Every five"})
    undone = (await owner.post(f"{API}/jobs/{job.id}/undo")).json()
    assert undone["scheduleValue"] == "0 9 * * *" and undone["name"] == "Daily sales report"
    trail = (await owner.get(f"{API}/jobs/{job.id}/audit")).json()["items"]
    assert [e["action"] for e in trail] == ["undo", "update", "create"]
    update = trail[1]
    assert update["actor"] == OWNER
    assert update["before"]["scheduleValue"] == "0 9 * * *" and update["after"]["scheduleValue"] == "*/5 * * * *"
    assert (await owner.get(f"{API}/jobs/{job.id}/audit", params={"limit": 1})).json()["items"][0]["action"] == "undo"


async def test_undo_with_nothing_to_undo_says_so(owner, job):
    response = await owner.post(f"{API}/jobs/{job.id}/undo")
    assert response.status_code == 422
    assert response.json()["errors"] == {"undo": "there is no earlier version to go back to"}


async def test_unknown_ids_are_404_problems(owner):
    for method, path in (
        ("GET", "/jobs/nope"),
        ("PATCH", "/jobs/nope"),
        ("POST", "/jobs/nope/trigger"),
        ("GET", "/jobs/nope/runs"),
        ("GET", "/runs/nope"),
        ("GET", "/jobs/" + "x" * 300),
    ):
        response = await owner.request(method, API + path, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_wrong_methods_and_paths_are_problems_too(owner):
    assert (await owner.put(f"{API}/jobs")).status_code == 405
    missing = await owner.get(f"{API}/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "method,path,body,status",
    [
        ("GET", "/jobs/a%00b", None, 404),
        ("GET", "/runs/a%00b", None, 404),
        ("GET", "/jobs?search=a%00b", None, 200),
        ("GET", "/jobs?sourceModule=a%00b", None, 200),
        ("GET", "/export?tenantId=a%00b", None, 200),
        ("POST", "/jobs/{job}/disable", {"note": "a\u0000b"}, 422),
        ("PATCH", "/jobs/{job}", {"targetPayload": {"k": "a\u0000b"}}, 422),
        ("PATCH", "/jobs/{job}", {"targetPayload": {"k\u0000": [1]}}, 422),
        ("PATCH", "/jobs/{job}", {"name": "a\u0000b"}, 422),
    ],
)
async def test_nul_characters_never_reach_the_database(owner, job, method, path, body, status):
    # PostgreSQL refuses text containing NUL; the API must answer, not fail.
    response = await owner.request(method, API + path.format(job=job.id), json=body)
    assert response.status_code == status, response.text
