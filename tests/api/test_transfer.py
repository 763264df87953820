"""Import and export of schedules as YAML: through the API and the CLI, upsert by id, dry runs,
all or nothing."""

from __future__ import annotations

import pytest
import yaml

from app.domain.writes import ScheduleWriter
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.http import API

OWNER = "owner@acme.test"
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def owner(client, bearer):
    client.headers.update(bearer(OWNER))
    return client


def document(*items: dict) -> bytes:
    return yaml.safe_dump({"version": 1, "schedules": list(items)}, sort_keys=False).encode()


def new_item(**overrides) -> dict:
    return {
        "id": "rates:acme-eu",
        "name": "Hourly rates",
        "scopeType": "organization",
        "tenantId": "acme",
        "organizationId": "acme-eu",
        "scheduleValue": "0 * * * *",
        "targetType": "queue",
        "targetQueue": "currency-rates",
        **overrides,
    }


async def exported(client) -> dict:
    response = await client.get(f"{API}/export")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/yaml")
    return yaml.safe_load(response.text)


async def test_export_writes_whole_definitions_in_camel_case(owner, job):
    doc = await exported(owner)
    assert doc["version"] == 1
    (item,) = doc["schedules"]
    assert item["id"] == job.id and item["scheduleValue"] == "0 9 * * *" and item["timezone"] == "Europe/Warsaw"
    assert item["targetCommand"] == "reports.sales-summary" and item["targetPayload"] == {"period": "day"}
    assert "targetQueue" not in item and "version" not in item and "nextRunAt" not in item


async def test_an_export_imports_back_unchanged(owner, app_runtime, job):
    text = (await owner.get(f"{API}/export")).content
    result = await owner.post(f"{API}/import", content=text, headers=YAML)
    assert result.status_code == 200, result.text
    assert result.json() == {
        "dryRun": False,
        "items": [{"id": job.id, "action": "unchanged"}],
        "created": 0,
        "updated": 0,
        "unchanged": 1,
    }
    assert (await app_runtime.scheduler.get(job.id)).version == job.version


async def test_dry_run_reports_the_plan_and_writes_nothing(owner, app_runtime, job):
    changed = {**(await exported(owner))["schedules"][0], "scheduleValue": "0 10 * * *"}
    body = document(changed, new_item())
    plan = await owner.post(f"{API}/import", params={"dryRun": "true"}, content=body, headers=YAML)
    assert plan.status_code == 200, plan.text
    assert plan.json()["items"] == [{"id": job.id, "action": "update"}, {"id": "rates:acme-eu", "action": "create"}]
    assert plan.json()["dryRun"] is True and plan.json()["created"] == 1 and plan.json()["updated"] == 1
    assert (await app_runtime.scheduler.get(job.id)).schedule_value == "0 9 * * *"
    assert (await owner.get(f"{API}/jobs/rates:acme-eu")).status_code == 404

    applied = await owner.post(f"{API}/import", content=body, headers=YAML)
    assert applied.json()["dryRun"] is False
    assert (await app_runtime.scheduler.get(job.id)).schedule_value == "0 10 * * *"
    created = (await owner.get(f"{API}/jobs/rates:acme-eu")).json()
    assert created["createdBy"] == OWNER and created["nextRunAt"] == "2026-06-01T13:00:00Z"
    trail = (await owner.get(f"{API}/jobs/{job.id}/audit")).json()["items"]
    assert trail[0]["action"] == "update" and trail[0]["actor"] == OWNER


async def test_one_bad_schedule_and_nothing_is_written(owner, app_runtime, job):
    changed = {**(await exported(owner))["schedules"][0], "name": "Renamed"}
    body = document(new_item(), changed, new_item(id="broken", scheduleValue="99 * * * *", jitterSeconds=-5))
    response = await owner.post(f"{API}/import", content=body, headers=YAML)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"schedules[2].scheduleValue", "schedules[2].jitterSeconds"}
    assert (await app_runtime.scheduler.get(job.id)).name == "Daily sales report"
    assert (await owner.get(f"{API}/jobs/rates:acme-eu")).status_code == 404


async def test_a_failure_while_writing_rolls_back_every_write(owner, app_runtime, job, monkeypatch):
    changed = {**(await exported(owner))["schedules"][0], "name": "Renamed"}
    real_new_row = ScheduleWriter.new_row

    def new_row_then_fail(self, job_id, *args, **kwargs):
        # Written in id order: "first" is planned and the update of the exported schedule
        # written before "second" fails.
        if job_id == "second":
            raise RuntimeError("the database went away")
        return real_new_row(self, job_id, *args, **kwargs)

    monkeypatch.setattr(ScheduleWriter, "new_row", new_row_then_fail)
    with pytest.raises(RuntimeError):
        await app_runtime.scheduler.import_many(
            [_snake(changed), _snake(new_item(id="first")), _snake(new_item(id="second"))], await _owner(app_runtime)
        )
    assert (await app_runtime.scheduler.get(job.id)).name == "Daily sales report"
    assert not await app_runtime.scheduler.exists("first")


@pytest.mark.parametrize(
    "body,named,phrase",
    [
        (b"schedules: [unclosed", "file", "not valid YAML"),
        (b"- just\n- a list\n", "file", "'schedules' list"),
        (b"base: &b {name: x}\nschedules: [*b]\n", "file", "aliases"),
        (b"version: 2\nschedules: []\n", "version", "unsupported version"),
        (b"schedules: []\nextra: 1\n", "file", "unknown top-level keys: extra"),
        (b"schedules: [42]\n", "schedules[0]", "mapping"),
        (document(new_item(colour="blue")), "schedules[0]", "unknown fields: colour"),
        (document(new_item(), new_item()), "schedules[1].id", "more than once"),
        (document(new_item(id="bad id!")), "schedules[0].id", "1-200 characters"),
        (
            document(new_item(scopeType="system", tenantId=None, organizationId=None)),
            "schedules[0].scopeType",
            "only superadmins",
        ),
        (b"\xff\xfe not utf-8", "file", "UTF-8"),
    ],
)
async def test_malformed_files_are_refused_naming_the_problem(owner, body, named, phrase):
    response = await owner.post(f"{API}/import", content=body, headers=YAML)
    assert response.status_code == 422, response.text
    assert phrase in response.json()["errors"][named]


async def test_an_import_cannot_move_a_schedule_or_take_another_tenants_id(client, bearer, job):
    moved = document(new_item(id=job.id, scopeType="tenant", organizationId=None))
    response = await client.post(f"{API}/import", content=moved, headers={**YAML, **bearer(OWNER)})
    assert response.status_code == 422 and "cannot change" in response.json()["errors"]["schedules[0].scopeType"]
    stolen = document(new_item(id=job.id, tenantId="globex", organizationId="globex-us"))
    response = await client.post(f"{API}/import", content=stolen, headers={**YAML, **bearer("owner@globex.test")})
    assert response.status_code == 422 and "is not available" in response.json()["errors"]["schedules[0].id"]


async def test_export_filters_by_scope_and_tenant(client, bearer, app_runtime, job):
    await app_runtime.scheduler.create(
        job_definition(DAILY_SALES_REPORT, id="tenant-wide", scope_type="tenant", organization_id=None)
    )
    root = bearer("root@example.com")
    tenant_only = yaml.safe_load((await client.get(f"{API}/export", params={"scopeType": "tenant"}, headers=root)).text)
    assert [s["id"] for s in tenant_only["schedules"]] == ["tenant-wide"]
    globex = yaml.safe_load((await client.get(f"{API}/export", params={"tenantId": "globex"}, headers=root)).text)
    assert globex["schedules"] == []


def _snake(item: dict) -> dict:
    from app.domain.transfer import FILE_KEYS

    return {FILE_KEYS[k]: v for k, v in item.items()}


async def _owner(runtime):
    return await runtime.users.actor_for(await runtime.credentials.user_by_email(OWNER))
