"""The tenant boundary over HTTP (SQLite and PostgreSQL): targets a caller may not schedule are
not listed and are refused naming the field; ids of other scopes are not available; every bad
field is named at once; a stale If-Match is refused even when nothing would change."""

from __future__ import annotations

from tests.support.http import API

OWNER, ROOT, GLOBEX = "owner@acme.test", "root@example.com", "owner@globex.test"
CLEANUP = "scheduler.history.cleanup"
NEW_JOB = {
    "name": "Hourly rates",
    "scheduleValue": "0 * * * *",
    "scopeType": "tenant",
    "tenantId": "acme",
    "targetType": "command",
    "targetCommand": "demo.echo",
}


async def test_targets_list_only_what_the_caller_may_schedule(client, bearer):
    tenant_view = (await client.get(f"{API}/targets", headers=bearer(OWNER))).json()["items"]
    assert CLEANUP not in {t["name"] for t in tenant_view}
    assert all(set(t["scopes"]) <= {"tenant", "organization"} for t in tenant_view)
    root_view = {
        t["name"]: t["scopes"] for t in (await client.get(f"{API}/targets", headers=bearer(ROOT))).json()["items"]
    }
    assert root_view[CLEANUP] == ["system"] and root_view["demo.echo"] == ["organization", "system", "tenant"]


async def test_a_tenant_admin_cannot_schedule_the_history_cleanup(client, bearer):
    body = {**NEW_JOB, "targetCommand": CLEANUP, "targetPayload": {"days": 1}}
    response = await client.post(f"{API}/jobs", json=body, headers=bearer(OWNER))
    assert response.status_code == 422
    assert response.json()["errors"] == {"targetCommand": f"command '{CLEANUP}' can only be scheduled in system scope"}


async def test_another_tenants_deleted_id_is_not_available(client, bearer, app_runtime):
    made = await client.post(
        f"{API}/jobs",
        json={**NEW_JOB, "id": "tB-pay", "tenantId": "globex", "targetPayload": {"message": "secret"}},
        headers=bearer(GLOBEX),
    )
    assert made.status_code == 201, made.text
    assert (await client.delete(f"{API}/jobs/tB-pay", headers=bearer(GLOBEX))).status_code == 204
    taken = await client.post(f"{API}/jobs", json={**NEW_JOB, "id": "tB-pay"}, headers=bearer(OWNER))
    assert taken.status_code == 422 and taken.json()["errors"] == {
        "id": "the id 'tB-pay' is not available; choose another"
    }
    assert (await client.get(f"{API}/jobs/tB-pay/runs", headers=bearer(OWNER))).status_code == 404
    assert (await client.post(f"{API}/jobs/tB-pay/undo", headers=bearer(GLOBEX))).status_code == 200


async def test_a_typo_in_a_tenant_is_a_field_error(client, bearer):
    response = await client.post(
        f"{API}/jobs", json={**NEW_JOB, "tenantId": "acmee", "scopeType": "tenant"}, headers=bearer(ROOT)
    )
    assert response.status_code == 422 and response.json()["errors"] == {"tenantId": "there is no tenant 'acmee'"}
    response = await client.post(
        f"{API}/jobs",
        json={**NEW_JOB, "tenantId": "globex", "scopeType": "organization", "organizationId": "acme-eu"},
        headers=bearer(ROOT),
    )
    assert response.status_code == 422
    assert response.json()["errors"] == {"organizationId": "tenant 'globex' has no organization 'acme-eu'"}


async def test_a_bad_timezone_does_not_hide_a_bad_cron(client, bearer):
    body = {**NEW_JOB, "timezone": "Mars/Olympus", "scheduleValue": "61 * * * *"}
    response = await client.post(f"{API}/jobs", json=body, headers=bearer(OWNER))
    assert response.status_code == 422 and set(response.json()["errors"]) == {"timezone", "scheduleValue"}


async def test_enable_or_disable_with_a_stale_if_match_is_412_even_in_that_state(client, bearer, job):
    for action in ("enable", "disable"):
        for _ in range(2):  # the second call finds the schedule already in that state
            current = (await client.get(f"{API}/jobs/{job.id}", headers=bearer(OWNER))).headers["etag"]
            stale = f'"{int(current.strip(chr(34))) - 1}"'
            response = await client.post(f"{API}/jobs/{job.id}/{action}", headers={**bearer(OWNER), "If-Match": stale})
            assert response.status_code == 412, (action, response.text)
            assert (
                await client.post(f"{API}/jobs/{job.id}/{action}", headers={**bearer(OWNER), "If-Match": current})
            ).status_code == 200


async def test_every_wrong_field_of_a_body_is_named_at_once(client, bearer):
    body = {"name": 5, "jitterSeconds": "abc", "maxRetries": [1], "colour": "red"}
    response = await client.post(f"{API}/jobs", json=body, headers=bearer(OWNER))
    assert response.status_code == 422
    assert response.json()["errors"] == {
        "name": "Expected str, got int",
        "scheduleValue": "is required",
        "jitterSeconds": "Expected int, got str",
        "maxRetries": "Expected int, got array",
        "colour": "unknown field",
    }
