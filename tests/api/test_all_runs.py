"""GET /api/scheduler/runs: every run the caller may see, across schedules, with counts by status."""

from __future__ import annotations

import pytest

from tests.support.http import API
from tests.support.personas import ACME_OWNER, ACME_VIEWER, GLOBEX_OWNER, ROOT
from tests.support.runs import world_with_runs

RUNS = f"{API}/runs"


@pytest.fixture
async def world(app_runtime):
    return await world_with_runs(app_runtime, app_runtime.clock())


async def listed(client, headers, **params) -> dict:
    response = await client.get(RUNS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def counts_of(page: dict) -> dict[str, int]:
    return {c["status"]: c["count"] for c in page["counts"] if c["count"]}


async def test_a_tenant_admin_sees_their_tenants_runs_only_deleted_schedules_included(client, bearer, world):
    page = await listed(client, bearer(ACME_OWNER), pageSize=100)
    jobs = {item["jobId"] for item in page["items"]}
    # acme-eu's, acme's tenant-wide and acme-eu's deleted schedule: not acme-us, globex or system.
    assert jobs == {"acme-eu:export", "acme:invoices", "acme-eu:old-feed"}
    assert page["total"] == 9 and page["totalExact"] is True
    deleted = [item for item in page["items"] if item["jobId"] == "acme-eu:old-feed"]
    assert all(item["jobDeleted"] and item["jobName"] == "Old price feed" for item in deleted)
    assert counts_of(page) == {"failed": 3, "succeeded": 6}


async def test_another_tenants_runs_never_show_even_when_asked_for(client, bearer, world):
    for params in ({}, {"tenantId": "acme"}, {"search": "export"}, {"jobId": "acme-eu:export"}, {"status": "failed"}):
        page = await listed(client, bearer(GLOBEX_OWNER), pageSize=100, **params)
        assert {item["jobId"] for item in page["items"]} <= {"globex:export", "globex:gone"}, params
        text = str(page)
        assert "acme" not in text and "System echo" not in text, params
    assert (await listed(client, bearer(GLOBEX_OWNER), tenantId="acme"))["total"] == 0


async def test_newest_first_across_schedules(client, bearer, world):
    page = await listed(client, bearer(ROOT), pageSize=100)
    assert page["total"] == 21
    newest = [world[key][0] for key in world]  # each schedule's failed run, a second apart
    assert [item["id"] for item in page["items"][:7]] == newest
    first = page["items"][0]
    assert first["status"] == "failed" and first["errorMessage"] == "ConnectionError: acme_eu supplier down"
    assert first["jobName"] == "Nightly export" and first["jobDeleted"] is False
    assert "errorStack" not in first  # the run in full (GET /runs/{id}) has it


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"status": "failed"}, 7),
        ({"status": "failed", "since": "1h"}, 7),
        ({"since": "1h"}, 7),
        ({"since": "3h"}, 14),
        ({"until": "1d"}, 7),
        ({"since": "2026-06-01T11:00:00+02:00", "until": "2026-06-01T11:00:00Z"}, 7),
        ({"trigger": "manual"}, 7),
        ({"jobId": "globex:gone"}, 3),
        ({"search": "EXPORT"}, 6),  # Nightly export, Globex secret export: by name, any case
        ({"search": "acme-us:"}, 3),  # by id
        ({"tenantId": "acme"}, 12),
        ({"tenantId": "acme", "organizationId": "acme-us"}, 3),
        ({"search": "nothing like it"}, 0),
        ({"search": "100%"}, 0),  # % is a character, not a wildcard
    ],
)
async def test_a_superadmin_filters_by_every_field(client, bearer, world, params, expected):
    page = await listed(client, bearer(ROOT), pageSize=100, **params)
    assert page["total"] == len(page["items"]) == expected, params


async def test_counts_are_for_the_other_filters_and_the_total_for_the_chosen_status(client, bearer, world):
    page = await listed(client, bearer(ROOT), status="failed", since="24h")
    assert counts_of(page) == {"failed": 7, "succeeded": 7}
    assert [c["status"] for c in page["counts"]] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "timed_out",
        "skipped",
        "missed",
        "cancelled",
    ]
    assert all(c["exact"] for c in page["counts"])
    assert page["total"] == 7 and {item["status"] for item in page["items"]} == {"failed"}


async def test_pages(client, bearer, world):
    first = await listed(client, bearer(ACME_VIEWER), pageSize=4)
    third = await listed(client, bearer(ACME_VIEWER), pageSize=4, page=3)
    everything = await listed(client, bearer(ACME_VIEWER), pageSize=100)
    ids = [item["id"] for item in everything["items"]]
    assert [item["id"] for item in first["items"]] == ids[:4]
    assert [item["id"] for item in third["items"]] == ids[8:]
    assert first["total"] == third["total"] == 9 and first["pageSize"] == 4


@pytest.mark.parametrize(
    "params,named",
    [
        ({"status": "exploded"}, "status"),
        ({"trigger": "whim"}, "trigger"),
        ({"since": "last tuesday"}, "since"),
        ({"since": "2026-05-01T10:00:00"}, "since"),  # no offset: ambiguous
        ({"since": "1y"}, "since"),
        ({"since": "400d"}, "since"),
        ({"until": "0001-01-01T00:00:00+14:00"}, "until"),
        ({"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "until"),
        ({"since": "1h", "until": "2h"}, "until"),
        ({"pageSize": 0}, "pageSize"),
        ({"pageSize": 101}, "pageSize"),
        ({"page": 10_001}, "page"),
        ({"search": "x" * 201}, "search"),
    ],
)
async def test_bad_parameters_are_named(client, bearer, world, params, named):
    response = await client.get(RUNS, params=params, headers=bearer(ACME_OWNER))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert named in response.json()["errors"]


async def test_nul_and_odd_text_are_no_matches_not_errors(client, bearer, world):
    for params in ({"search": "a\x00b"}, {"jobId": "\x00"}, {"tenantId": "acme\x00"}):
        assert (await listed(client, bearer(ROOT), **params))["total"] == 0
