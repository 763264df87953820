"""The trash through the JSON API: ``GET /trash`` and ``POST /jobs/{id}/restore``, in scope."""

from __future__ import annotations

import pytest

from app.domain.registry import TargetRegistry
from app.runtime import Runtime
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.http import API

OWNER = "owner@acme.test"
VIEWER = "viewer@acme.test"
OPERATOR = "operator@acme.test"
GLOBEX = "owner@globex.test"
ROOT = "root@example.com"


@pytest.fixture
async def trashed(app_runtime, clock):
    """acme-eu's daily report, then globex's and a system schedule, deleted in that order."""
    scheduler = app_runtime.scheduler
    acme = await scheduler.create(job_definition(DAILY_SALES_REPORT))
    globex = await scheduler.create(
        job_definition(DAILY_SALES_REPORT, id="globex:report", tenant_id="globex", organization_id="globex-us")
    )
    system = await scheduler.create(job_definition(id="system:echo"))
    for job in (acme, globex, system):
        clock.advance(minutes=1)
        await scheduler.delete(job.id)
    return {"acme": acme.id, "globex": globex.id, "system": system.id}


async def test_the_trash_lists_the_callers_deleted_schedules_with_who_when_and_purge(client, bearer, trashed):
    response = await client.get(f"{API}/trash", headers=bearer(OWNER))
    assert response.status_code == 200, response.text
    page = response.json()
    assert [item["id"] for item in page["items"]] == [trashed["acme"]]
    assert (page["total"], page["page"], page["pageSize"], page["totalExact"]) == (1, 1, 25, True)
    item = page["items"][0]
    assert (item["deletedAt"], item["deletedBy"], item["purgeAt"]) == (
        "2026-06-01T12:01:00Z",
        "system",
        "2026-07-01T12:01:00Z",
    )
    assert item["name"] == "Daily sales report" and item["targetCommand"] == "reports.sales-summary"
    everything = (await client.get(f"{API}/trash", headers=bearer(ROOT))).json()
    assert [i["id"] for i in everything["items"]] == [trashed["system"], trashed["globex"], trashed["acme"]]
    viewer = (await client.get(f"{API}/trash", headers=bearer(VIEWER))).json()
    assert [i["id"] for i in viewer["items"]] == [trashed["acme"]]


async def test_the_trash_is_searched_and_paged(client, bearer, trashed):
    def ids(response):
        return [i["id"] for i in response.json()["items"]]

    assert ids(await client.get(f"{API}/trash", params={"search": "SYSTEM:"}, headers=bearer(ROOT))) == ["system:echo"]
    assert ids(await client.get(f"{API}/trash", params={"search": "report"}, headers=bearer(GLOBEX))) == [
        "globex:report"
    ]
    second = await client.get(f"{API}/trash", params={"page": 2, "pageSize": 2}, headers=bearer(ROOT))
    assert ids(second) == [trashed["acme"]] and second.json()["total"] == 3
    bad = await client.get(f"{API}/trash", params={"pageSize": 500}, headers=bearer(ROOT))
    assert bad.status_code == 422 and "pageSize" in bad.json()["errors"]


async def test_a_tenant_admin_never_sees_or_restores_another_tenants_deleted_schedule(
    client, bearer, app_runtime, trashed
):
    listed = (await client.get(f"{API}/trash", params={"search": "globex"}, headers=bearer(OWNER))).json()
    assert listed["items"] == [] and listed["total"] == 0
    for job_id in (trashed["globex"], trashed["system"], "no-such-schedule"):
        response = await client.post(f"{API}/jobs/{job_id}/restore", headers=bearer(OWNER))
        assert response.status_code == 404, job_id
        assert response.json()["detail"] == f"no schedule with id '{job_id}'"
    live = await app_runtime.scheduler.create(
        job_definition(DAILY_SALES_REPORT, id="globex:live", tenant_id="globex", organization_id="globex-us")
    )
    assert (await client.post(f"{API}/jobs/{live.id}/restore", headers=bearer(OWNER))).status_code == 404
    assert not await app_runtime.scheduler.exists(trashed["globex"])


async def test_restore_answers_the_schedule_with_its_next_slot_and_is_audited(client, bearer, clock, trashed):
    clock.set(clock().replace(hour=20))  # 20:00 UTC: the 09:00 Warsaw slot of today has passed
    response = await client.post(f"{API}/jobs/{trashed['acme']}/restore", headers=bearer(OWNER))
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["nextRunAt"] == "2026-06-02T07:00:00Z" and response.headers["etag"] == f'"{job["version"]}"'
    assert (await client.get(f"{API}/jobs/{trashed['acme']}", headers=bearer(VIEWER))).status_code == 200
    audit = (await client.get(f"{API}/jobs/{trashed['acme']}/audit", headers=bearer(VIEWER))).json()["items"]
    assert (audit[0]["action"], audit[0]["actor"], audit[0]["before"]) == ("restore", OWNER, None)
    assert audit[0]["after"]["scheduleValue"] == "0 9 * * *"
    assert (await client.get(f"{API}/trash", headers=bearer(OWNER))).json()["total"] == 0


async def test_restoring_a_live_schedule_is_a_409_with_a_clear_message(client, bearer, trashed):
    assert (await client.post(f"{API}/jobs/{trashed['acme']}/restore", headers=bearer(OWNER))).status_code == 200
    again = await client.post(f"{API}/jobs/{trashed['acme']}/restore", headers=bearer(OWNER))
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert again.json()["detail"] == "'Daily sales report' is not deleted: there is nothing to restore"


@pytest.mark.parametrize("who", [VIEWER, OPERATOR])
async def test_those_without_the_manage_permission_get_403(client, bearer, app_runtime, trashed, who):
    response = await client.post(f"{API}/jobs/{trashed['acme']}/restore", headers=bearer(who))
    assert response.status_code == 403 and "scheduler.jobs.manage" in response.json()["detail"]
    assert not await app_runtime.scheduler.exists(trashed["acme"])


async def test_without_credentials_401_and_a_browser_without_csrf_403(client, trashed, sign_in):
    assert (await client.get(f"{API}/trash")).status_code == 401
    assert (await client.post(f"{API}/jobs/{trashed['acme']}/restore")).status_code == 401
    await sign_in(OWNER)
    refused = await client.post(f"{API}/jobs/{trashed['acme']}/restore")
    assert refused.status_code == 403


async def test_a_schedule_whose_target_is_no_longer_schedulable_is_refused_naming_the_field(
    client, bearer, app_runtime
):
    async def handler(payload, ctx):
        return None

    registry = TargetRegistry()
    registry.command("vendor.sync", label="Sync", schedulable=True)(handler)
    vendor = Runtime.create(app_runtime.settings, clock=app_runtime.clock, registry=registry)
    try:
        definition = job_definition(DAILY_SALES_REPORT, id="vendor:sync", target_command="vendor.sync")
        await vendor.scheduler.create(definition)
        await vendor.scheduler.delete("vendor:sync")
    finally:
        await vendor.close()
    response = await client.post(f"{API}/jobs/vendor:sync/restore", headers=bearer(OWNER))
    assert response.status_code == 422
    assert response.json()["errors"] == {"targetCommand": "cannot restore: unknown command 'vendor.sync'"}


async def test_the_openapi_document_describes_the_trash(client):
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert set(paths[f"{API}/trash"]) == {"get"}
    assert {"200", "403", "404", "409", "422"} <= set(paths[f"{API}/jobs/{{job_id}}/restore"]["post"]["responses"])
