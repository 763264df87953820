"""GET /api/scheduler/processes and /health: processes are shared infrastructure; where they
run is the superadmin's, and the work a tenant sees is their own scope's."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domain.heartbeats import Heartbeat, ProcessKind
from app.domain.ids import new_id
from app.persistence.models import ScheduledJob, ScheduledJobRun
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.http import API
from tests.support.personas import ACME_OWNER, ACME_VIEWER, GLOBEX_OWNER, ROOT


@pytest.fixture
async def poller(app_runtime):
    beat = Heartbeat(app_runtime, ProcessKind.POLLER, lambda: 2)
    await beat.start()
    yield beat
    await beat.stop()


async def running(runtime, tenant: str, organization: str) -> None:
    async with runtime.sessions.begin() as session:
        session.add(
            ScheduledJobRun(
                id=new_id(),
                job_id=f"{tenant}:job",
                tenant_id=tenant,
                organization_id=organization,
                scheduled_for=runtime.clock(),
                trigger="manual",
                status="running",
                attempt=1,
                created_at=runtime.clock(),
            )
        )


async def test_a_superadmin_sees_where_each_process_runs_and_what_it_runs(client, bearer, app_runtime, poller):
    await running(app_runtime, "acme", "acme-eu")
    await running(app_runtime, "globex", "globex-us")
    response = await client.get(f"{API}/processes", headers=bearer(ROOT))
    assert response.status_code == 200
    body = response.json()
    [process] = body["items"]
    assert process["id"] == poller.id
    assert (process["kind"], process["state"], process["strategy"]) == ("poller", "live", "local")
    assert (process["host"], process["pid"], process["runsInFlight"]) == (poller.host, poller.pid, 2)
    assert process["version"]
    assert process["startedAt"] == process["lastSeenAt"] == "2026-06-01T12:00:00Z"
    assert body["live"] == {"embedded": 0, "poller": 1, "async-scheduler": 0, "worker": 0}
    assert body["runsInFlight"] == 2


@pytest.mark.parametrize("email", [ACME_OWNER, ACME_VIEWER])
async def test_a_tenant_user_sees_kind_and_state_but_no_host_pid_or_version(client, bearer, app_runtime, poller, email):
    await running(app_runtime, "acme", "acme-eu")
    await running(app_runtime, "globex", "globex-us")
    await running(app_runtime, "globex", "globex-us")
    response = await client.get(f"{API}/processes", headers=bearer(email))
    assert response.status_code == 200
    body = response.json()
    [process] = body["items"]
    assert set(process) == {"id", "kind", "state", "strategy", "startedAt", "lastSeenAt"}
    assert poller.host not in response.text and '"pid"' not in response.text
    assert body["runsInFlight"] == 1  # acme's running run, not globex's two


async def test_another_tenant_counts_only_its_own_runs(client, bearer, app_runtime, poller):
    await running(app_runtime, "acme", "acme-eu")
    body = (await client.get(f"{API}/processes", headers=bearer(GLOBEX_OWNER))).json()
    assert body["runsInFlight"] == 0
    assert [p["state"] for p in body["items"]] == ["live"]


async def test_stopped_and_lost_processes_are_listed_after_the_live_ones(client, bearer, app_runtime, clock):
    gone = Heartbeat(app_runtime, ProcessKind.WORKER)
    await gone.start()
    await gone.stop()
    clock.advance(seconds=5)
    lost = Heartbeat(app_runtime, ProcessKind.ASYNC_SCHEDULER)
    await lost.start()
    lost._task.cancel()  # it dies without a word
    clock.advance(seconds=40)
    live = Heartbeat(app_runtime, ProcessKind.EMBEDDED)
    await live.start()
    try:
        items = (await client.get(f"{API}/processes", headers=bearer(ROOT))).json()["items"]
        assert [(p["kind"], p["state"]) for p in items] == [
            ("embedded", "live"),
            ("async-scheduler", "lost"),
            ("worker", "stopped"),
        ]
        assert items[2]["stoppedAt"] == "2026-06-01T12:00:00Z"
    finally:
        await live.stop()


async def test_health_says_what_to_run_when_nothing_fires(client, bearer):
    response = await client.get(f"{API}/health", headers=bearer(ACME_VIEWER))
    assert response.status_code == 200
    body = response.json()
    assert body["healthy"] is False and body["strategy"] == "local"
    [problem] = body["problems"]
    assert problem["code"] == "no-poller"
    assert problem["command"] == "mercato scheduler start"


async def test_health_is_clean_with_a_poller_alive(client, bearer, poller):
    body = (await client.get(f"{API}/health", headers=bearer(ACME_OWNER))).json()
    assert body == {
        "healthy": True,
        "strategy": "local",
        "live": {"embedded": 0, "poller": 1, "async-scheduler": 0, "worker": 0},
        "problems": [],
    }


async def test_overdue_slots_show_only_to_those_who_can_see_the_schedule(client, bearer, app_runtime, clock, poller):
    job = await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    async with app_runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id == job.id).values(next_run_at=clock() - timedelta(minutes=10))
        )
    acme = (await client.get(f"{API}/health", headers=bearer(ACME_VIEWER))).json()
    globex = (await client.get(f"{API}/health", headers=bearer(GLOBEX_OWNER))).json()
    assert [(p["code"], p["since"]) for p in acme["problems"]] == [("slots-overdue", "2026-06-01T11:50:00Z")]
    assert globex["problems"] == []


@pytest.mark.parametrize("path", ["/processes", "/health"])
async def test_anonymous_callers_get_401(client, path):
    response = await client.get(f"{API}{path}")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/processes", "/health"])
async def test_the_routes_are_in_the_openapi_document(client, path):
    document = (await client.get("/schema/openapi.json")).json()
    assert f"{API}{path}" in document["paths"]
