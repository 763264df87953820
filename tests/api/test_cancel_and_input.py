"""Cancelling a run and triggering with input through the API: answers, validation, permissions
and scopes (a run of another scope, live or deleted schedule, is not found)."""

from __future__ import annotations

import pytest

from app.domain.starting import start_run
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.http import API


async def test_cancelling_a_queued_run_answers_the_cancelled_run(client, bearer, app_runtime, job):
    run = await app_runtime.scheduler.trigger(job.id)
    response = await client.post(f"{API}/runs/{run.id}/cancel", headers=bearer("operator@acme.test"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["status"], body["cancelledBy"]) == (run.id, "cancelled", "operator@acme.test")
    assert body["cancelRequestedAt"] and body["finishedAt"] and body["startedAt"] is None
    listed = (await client.get(f"{API}/jobs/{job.id}/runs?status=cancelled", headers=bearer("owner@acme.test"))).json()
    assert [r["id"] for r in listed["items"]] == [run.id]
    assert "cancelled" in (await client.get("/schema/openapi.json")).text


async def test_cancelling_a_running_run_records_the_request(client, bearer, app_runtime, job):
    run = await app_runtime.scheduler.trigger(job.id)
    assert await start_run(app_runtime.execution, run.id, worker="elsewhere:1")
    response = await client.post(f"{API}/runs/{run.id}/cancel", headers=bearer("owner@acme.test"))
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelledBy"]) == ("running", "owner@acme.test")


async def test_cancelling_a_finished_run_is_a_conflict_with_a_clear_message(client, bearer, app_runtime, job):
    run = await app_runtime.scheduler.trigger(job.id)
    await app_runtime.scheduler.cancel_run(run.id)
    response = await client.post(f"{API}/runs/{run.id}/cancel", headers=bearer("owner@acme.test"))
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == (
        f"run {run.id} has already finished (cancelled); only a queued or running run can be cancelled"
    )


async def test_a_viewer_cannot_cancel_and_other_scopes_do_not_see_the_run(client, bearer, app_runtime, job):
    run = await app_runtime.scheduler.trigger(job.id)
    foreign = await app_runtime.scheduler.create(
        {**job_definition(DAILY_SALES_REPORT, id="t2:report"), "tenant_id": "t2", "organization_id": "org-9"}
    )
    deleted = await app_runtime.scheduler.create(
        {**job_definition(DAILY_SALES_REPORT, id="t2:gone"), "tenant_id": "t2", "organization_id": "org-9"}
    )
    foreign_run = await app_runtime.scheduler.trigger(foreign.id)
    deleted_run = await app_runtime.scheduler.trigger(deleted.id)
    await app_runtime.scheduler.delete(deleted.id)

    assert (await client.post(f"{API}/runs/{run.id}/cancel", headers=bearer("viewer@acme.test"))).status_code == 403
    assert (await client.post(f"{API}/runs/{run.id}/cancel", headers=bearer("owner@globex.test"))).status_code == 404
    for other in (foreign_run, deleted_run):
        answer = await client.post(f"{API}/runs/{other.id}/cancel", headers=bearer("owner@acme.test"))
        assert answer.status_code == 404 and answer.json()["detail"] == f"no run with id '{other.id}'"
    assert (await client.post(f"{API}/runs/nope/cancel", headers=bearer("owner@acme.test"))).status_code == 404
    assert (await client.post(f"{API}/runs/{run.id}/cancel")).status_code == 401
    for each in (run, foreign_run, deleted_run):
        assert (await app_runtime.scheduler.find_run(each.id)).status == "queued"


async def test_a_trigger_with_input_records_the_payload(client, bearer, app_runtime, job):
    headers = bearer("operator@acme.test")
    response = await client.post(f"{API}/jobs/{job.id}/trigger", json={"payload": {"period": "week"}}, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["payload"] == {"period": "week"}
    plain = await client.post(f"{API}/jobs/{job.id}/trigger", headers=headers)
    assert plain.status_code == 202 and plain.json()["payload"] == {"period": "day"}
    empty = await client.post(f"{API}/jobs/{job.id}/trigger", json={"payload": None}, headers=headers)
    assert empty.status_code == 202 and empty.json()["payload"] == {"period": "day"}
    shown = (await client.get(f"{API}/runs/{response.json()['id']}", headers=headers)).json()
    assert shown["payload"] == {"period": "week"}


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"payload": [1, 2]}, "payload", "Expected"),
        ({"payload": "text"}, "payload", "Expected"),
        ({"payload": {"blob": "x" * 70_000}}, "payload", "the limit is 65,536"),
        ({"payload": {"k": "a\u0000b"}}, "payload", "NUL"),
        ({"input": {}}, "input", "unknown field"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(client, bearer, app_runtime, job, body, field, message):
    response = await client.post(f"{API}/jobs/{job.id}/trigger", json=body, headers=bearer("owner@acme.test"))
    assert response.status_code == 422, response.text
    assert message in response.json()["errors"][field]
    assert (await app_runtime.scheduler.runs(job.id)).total == 0


async def test_input_from_a_caller_who_may_not_trigger_is_refused_before_it_is_read(client, bearer, app_runtime, job):
    bad = {"payload": {"blob": "x" * 70_000}}
    assert (
        await client.post(f"{API}/jobs/{job.id}/trigger", json=bad, headers=bearer("viewer@acme.test"))
    ).status_code == 403
    assert (
        await client.post(f"{API}/jobs/{job.id}/trigger", json=bad, headers=bearer("owner@globex.test"))
    ).status_code == 404
