"""Run history through the API: filters by status, trigger and slot range, paging, one run in full."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.http import API
from tests.support.runs import add_runs as add_runs_at

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


async def add_runs(runtime, job, specs) -> list[str]:
    """Runs of ``job``: (hours after T0, status, trigger, extra columns)."""
    at = [(T0 + timedelta(hours=hours), status, trigger, extra) for hours, status, trigger, extra in specs]
    return await add_runs_at(runtime, job, at)


@pytest.fixture
async def history(app_runtime, job):
    failed = {
        "started_at": T0 + timedelta(hours=2),
        "finished_at": T0 + timedelta(hours=2, seconds=3),
        "duration_ms": 3000,
        "error_message": "ValueError: boom",
        "error_stack": "Traceback ...\nValueError: boom",
    }
    succeeded = {
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=1),
        "duration_ms": 1000,
        "result": {"orders": 12},
    }
    return await add_runs(
        app_runtime,
        job,
        [
            (0, "succeeded", "scheduled", succeeded),
            (1, "missed", "scheduled", {"reason": "missed while the scheduler was not running"}),
            (2, "failed", "scheduled", failed),
            (3, "succeeded", "manual", {"triggered_by": "owner@acme.test"}),
            (4, "succeeded", "retry", {}),
        ],
    )


@pytest.fixture
def viewer(client, bearer):
    client.headers.update(bearer("viewer@acme.test"))
    return client


async def test_newest_first_with_a_summary_of_each_run(viewer, job, history):
    page = (await viewer.get(f"{API}/jobs/{job.id}/runs")).json()
    assert [r["id"] for r in page["items"]] == history[::-1]
    assert page["total"] == 5 and page["totalExact"] is True
    failed = page["items"][2]
    assert (
        failed["status"] == "failed" and failed["errorMessage"] == "ValueError: boom" and failed["durationMs"] == 3000
    )
    assert "errorStack" not in failed and "result" not in failed  # the full run has them


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"status": "succeeded"}, [4, 3, 0]),
        ({"trigger": "scheduled"}, [2, 1, 0]),
        ({"status": "succeeded", "trigger": "manual"}, [3]),
        ({"from": "2026-05-01T10:00:00Z"}, [4, 3, 2, 1]),
        ({"to": "2026-05-01T11:00:00+00:00"}, [1, 0]),
        ({"from": "2026-05-01T12:00:00+02:00", "to": "2026-05-01T13:00:00Z"}, [3, 2, 1]),
        ({"status": "missed", "from": "2026-05-01T11:00:00Z"}, []),
    ],
)
async def test_filters_by_status_trigger_and_slot_range(viewer, job, history, params, expected):
    page = (await viewer.get(f"{API}/jobs/{job.id}/runs", params=params)).json()
    assert [r["id"] for r in page["items"]] == [history[i] for i in expected]
    assert page["total"] == len(expected)


async def test_pages(viewer, job, history):
    first = (await viewer.get(f"{API}/jobs/{job.id}/runs", params={"pageSize": 2})).json()
    third = (await viewer.get(f"{API}/jobs/{job.id}/runs", params={"pageSize": 2, "page": 3})).json()
    assert [r["id"] for r in first["items"]] == [history[4], history[3]]
    assert [r["id"] for r in third["items"]] == [history[0]]
    assert first["total"] == third["total"] == 5 and first["pageSize"] == 2


@pytest.mark.parametrize(
    "params,named",
    [
        ({"status": "exploded"}, "status"),
        ({"trigger": "whim"}, "trigger"),
        ({"from": "last tuesday"}, "from"),
        ({"from": "2026-05-01T10:00:00"}, "from"),  # no offset: ambiguous
        ({"from": "2026-05-02T00:00:00Z", "to": "2026-05-01T00:00:00Z"}, "to"),
        ({"pageSize": 0}, "pageSize"),
    ],
)
async def test_bad_filters_are_named(viewer, job, params, named):
    response = await viewer.get(f"{API}/jobs/{job.id}/runs", params=params)
    assert response.status_code == 422, response.text
    assert named in response.json()["errors"]


async def test_one_run_in_full(viewer, job, history):
    failed = (await viewer.get(f"{API}/runs/{history[2]}")).json()
    assert failed["errorStack"].endswith("ValueError: boom") and failed["jobId"] == job.id
    succeeded = (await viewer.get(f"{API}/runs/{history[0]}")).json()
    assert succeeded["result"] == {"orders": 12} and succeeded["startedAt"] == "2026-05-01T09:00:00Z"


async def test_runs_of_another_tenant_are_not_found(client, bearer, job, history):
    response = await client.get(f"{API}/runs/{history[0]}", headers=bearer("owner@globex.test"))
    assert response.status_code == 404
    assert (await client.get(f"{API}/runs/{history[0]}", headers=bearer("root@example.com"))).status_code == 200
