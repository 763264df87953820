"""A run's log through the API: the lines after a cursor, a limit, following until complete,
and only within the caller's scope (live and deleted schedules alike)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.persistence.models import ScheduledJobRun, ScheduledJobRunLog
from tests.api.test_runs import T0, add_runs
from tests.support.firing import run_queued
from tests.support.http import API


async def add_lines(runtime, run_id, messages, *, tenant="acme", organization="acme-eu", first=1):
    async with runtime.sessions.begin() as session:
        for seq, (level, message) in enumerate(messages, start=first):
            session.add(
                ScheduledJobRunLog(
                    run_id=run_id,
                    seq=seq,
                    tenant_id=tenant,
                    organization_id=organization,
                    logged_at=T0 + timedelta(seconds=seq),
                    level=level,
                    message=message,
                )
            )


async def finish(runtime, run_id):
    async with runtime.sessions.begin() as session:
        await session.execute(sa.update(ScheduledJobRun).where(ScheduledJobRun.id == run_id).values(status="succeeded"))


@pytest.fixture
async def running(app_runtime, job):
    """A running run of acme-eu's schedule that has logged five lines."""
    [run_id] = await add_runs(app_runtime, job, [(0, "running", "manual", {"started_at": T0})])
    await add_lines(app_runtime, run_id, [("INFO", f"step {i}") for i in range(1, 5)] + [("ERROR", "<b>bad</b>")])
    return run_id


@pytest.fixture
def owner(client, bearer):
    client.headers.update(bearer("owner@acme.test"))
    return client


async def test_a_follower_reads_the_lines_after_its_cursor_until_the_run_is_complete(owner, app_runtime, running):
    first = (await owner.get(f"{API}/runs/{running}/logs", params={"limit": 2})).json()
    assert first["lines"] == [
        {"seq": 1, "at": "2026-05-01T09:00:01Z", "level": "INFO", "message": "step 1"},
        {"seq": 2, "at": "2026-05-01T09:00:02Z", "level": "INFO", "message": "step 2"},
    ]
    assert (first["runId"], first["status"], first["nextAfter"], first["complete"]) == (running, "running", 2, False)
    rest = (await owner.get(f"{API}/runs/{running}/logs", params={"after": first["nextAfter"]})).json()
    assert [line["seq"] for line in rest["lines"]] == [3, 4, 5]
    assert rest["lines"][-1] == {"seq": 5, "at": "2026-05-01T09:00:05Z", "level": "ERROR", "message": "<b>bad</b>"}
    assert (rest["nextAfter"], rest["complete"]) == (5, False)  # still running: more may come

    await add_lines(app_runtime, running, [("INFO", "done")], first=6)
    await finish(app_runtime, running)
    last = (await owner.get(f"{API}/runs/{running}/logs", params={"after": 5})).json()
    assert ([line["message"] for line in last["lines"]], last["status"], last["complete"]) == (
        ["done"],
        "succeeded",
        True,
    )
    nothing = (await owner.get(f"{API}/runs/{running}/logs", params={"after": 6})).json()
    assert (nothing["lines"], nothing["nextAfter"], nothing["complete"]) == ([], 6, True)


async def test_what_the_builtin_targets_log_comes_back_in_order(owner, app_runtime, job):
    failing = await app_runtime.scheduler.update(
        job.id, {"target_command": "demo.echo", "target_payload": {"fail": "503"}}
    )
    run = await app_runtime.scheduler.trigger(failing.id)
    await run_queued(app_runtime)
    body = (await owner.get(f"{API}/runs/{run.id}/logs")).json()
    assert [(line["level"], line["message"]) for line in body["lines"]] == [
        ("INFO", "echo None (attempt 1)"),
        ("ERROR", "failing as the payload asks: 503"),
    ]
    assert (body["status"], body["complete"]) == ("failed", True)


async def test_another_scopes_run_and_lines_are_not_found(client, bearer, app_runtime, job, running):
    for outsider in ("owner@globex.test",):
        response = await client.get(f"{API}/runs/{running}/logs", headers=bearer(outsider))
        assert response.status_code == 404, outsider
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "step 1" not in response.text
    # A line of another tenant on acme's run (as a bug elsewhere could leave) is not shown either.
    await add_lines(app_runtime, running, [("INFO", "t2 secret")], tenant="t2", organization="org-9", first=6)
    body = (await client.get(f"{API}/runs/{running}/logs", headers=bearer("owner@acme.test"))).json()
    assert "t2 secret" not in [line["message"] for line in body["lines"]]
    assert len(body["lines"]) == 5
    everything = (await client.get(f"{API}/runs/{running}/logs", headers=bearer("root@example.com"))).json()
    assert len(everything["lines"]) == 6


async def test_a_deleted_schedules_run_keeps_its_log_for_those_who_could_see_it(
    client, bearer, app_runtime, job, running
):
    await app_runtime.scheduler.delete(job.id)
    assert (
        len((await client.get(f"{API}/runs/{running}/logs", headers=bearer("viewer@acme.test"))).json()["lines"]) == 5
    )
    response = await client.get(f"{API}/runs/{running}/logs", headers=bearer("owner@globex.test"))
    assert response.status_code == 404


@pytest.mark.parametrize(
    "params,named",
    [({"after": -1}, "after"), ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"after": "x"}, "after")],
)
async def test_bad_cursors_and_limits_are_named(owner, running, params, named):
    response = await owner.get(f"{API}/runs/{running}/logs", params=params)
    assert response.status_code in (400, 422), response.text
    assert named in response.json()["errors"]


async def test_an_unknown_run_is_not_found(owner):
    response = await owner.get(f"{API}/runs/no-such-run/logs")
    assert response.status_code == 404
    assert response.json()["detail"] == "no run with id 'no-such-run'"
