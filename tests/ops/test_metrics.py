"""/metrics: Prometheus text computed from the database, for superadmins."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from app.domain.ids import new_id
from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.runtime import Runtime
from tests.support.factories import DAILY_SALES_REPORT, job_definition

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the test clock


def at(hh: int, mm: int, ss: float = 0) -> datetime:
    return NOW.replace(hour=hh, minute=mm) + timedelta(seconds=ss)


def run(job_id, *, slot, trigger, status, created=None, started=None, duration_ms=None):
    finished = started + timedelta(milliseconds=duration_ms) if started and duration_ms is not None else None
    return ScheduledJobRun(
        id=new_id(),
        job_id=job_id,
        tenant_id="acme",
        organization_id="acme-eu",
        scheduled_for=slot,
        trigger=trigger,
        status=status,
        attempt=1,
        created_at=created or slot,
        started_at=started,
        finished_at=finished,
        duration_ms=duration_ms,
    )


@pytest.fixture
async def seeded(app_runtime):
    """Schedules and runs written by another process (its own Runtime): the scrape must see them."""
    other = Runtime.create(replace(app_runtime.settings), clock=app_runtime.clock)
    try:
        service = other.scheduler
        for job_id in ("due", "later", "paused", "done", "gone"):
            await service.create(job_definition(DAILY_SALES_REPORT, id=job_id))
        await service.disable("paused")
        await service.delete("gone")
        async with other.sessions.begin() as session:

            def set_(job_id, **values):
                return session.execute(sa.update(ScheduledJob).where(ScheduledJob.id == job_id).values(**values))

            await set_("due", next_run_at=at(11, 58))
            await set_("later", next_run_at=at(13, 0))
            await set_("done", next_run_at=None)
            session.add_all(
                [
                    run(
                        "due",
                        slot=at(11, 30),
                        trigger="scheduled",
                        status="succeeded",
                        started=at(11, 30, 0.4),
                        duration_ms=2000,
                    ),
                    run(
                        "due",
                        slot=at(11, 40),
                        trigger="scheduled",
                        status="failed",
                        started=at(11, 40, 3),
                        duration_ms=500,
                    ),
                    run(
                        "due",
                        slot=at(11, 0),
                        created=at(11, 50),
                        trigger="catch_up",
                        status="succeeded",
                        started=at(11, 50),
                        duration_ms=100,
                    ),
                    run(
                        "due",
                        slot=at(11, 55),
                        trigger="manual",
                        status="succeeded",
                        started=at(11, 55, 9),
                        duration_ms=50,
                    ),
                    run("due", slot=at(11, 45), trigger="scheduled", status="missed"),
                    run("due", slot=at(11, 59), trigger="scheduled", status="queued"),
                    run("later", slot=at(11, 58), trigger="manual", status="running", started=at(11, 58)),
                    # Three hours ago: outside every window.
                    run(
                        "later",
                        slot=at(9, 0),
                        trigger="scheduled",
                        status="succeeded",
                        started=at(9, 0, 1),
                        duration_ms=10,
                    ),
                ]
            )
    finally:
        await other.close()


async def scrape(client, headers) -> dict:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(family) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}


async def test_runs_by_status_and_trigger_in_the_last_hour(client, bearer, seeded):
    families = await scrape(client, bearer("root@example.com"))
    runs = {
        (s.labels["status"], s.labels["trigger"]): s.value for s in families["mercato_scheduler_runs_last_hour"].samples
    }
    assert runs == {
        ("succeeded", "scheduled"): 1,
        ("failed", "scheduled"): 1,
        ("succeeded", "catch_up"): 1,
        ("succeeded", "manual"): 1,
        ("missed", "scheduled"): 1,
        ("queued", "scheduled"): 1,
        ("running", "manual"): 1,
    }
    assert families["mercato_scheduler_missed_slots_last_hour"].samples[0].value == 1
    in_flight = {s.labels["status"]: s.value for s in families["mercato_scheduler_runs_in_flight"].samples}
    assert in_flight == {"queued": 1, "running": 1}


async def test_firing_lag_histogram_covers_scheduled_and_catch_up_runs(client, bearer, seeded):
    families = await scrape(client, bearer("root@example.com"))
    lag = samples(families["mercato_scheduler_firing_lag_seconds"])
    bucket = lambda le: lag[("mercato_scheduler_firing_lag_seconds_bucket", (("le", le),))]
    assert bucket("0.1") == 0 and bucket("0.5") == 1 and bucket("2.0") == 1 and bucket("5.0") == 2
    assert bucket("900.0") == 2 and bucket("+Inf") == 3  # the catch-up run started 50 minutes after its slot
    # A gauge histogram: in the classic text format its count and sum are gauges of their own.
    assert families["mercato_scheduler_firing_lag_seconds_gcount"].samples[0].value == 3
    assert families["mercato_scheduler_firing_lag_seconds_gsum"].samples[0].value == pytest.approx(3003.4, abs=0.01)


async def test_run_duration_histogram(client, bearer, seeded):
    families = await scrape(client, bearer("root@example.com"))
    duration = samples(families["mercato_scheduler_run_duration_seconds"])
    bucket = lambda le: duration[("mercato_scheduler_run_duration_seconds_bucket", (("le", le),))]
    assert (bucket("0.01"), bucket("0.05"), bucket("0.1"), bucket("0.5"), bucket("1.0"), bucket("5.0")) == (
        0,
        1,
        2,
        3,
        3,
        4,
    )
    assert families["mercato_scheduler_run_duration_seconds_gsum"].samples[0].value == pytest.approx(2.65)


async def test_due_slots_and_schedules_by_state(client, bearer, seeded):
    families = await scrape(client, bearer("root@example.com"))
    assert families["mercato_scheduler_due_unclaimed_slots"].samples[0].value == 1
    assert families["mercato_scheduler_oldest_unclaimed_slot_age_seconds"].samples[0].value == 120
    states = {
        (s.labels["state"], s.labels["scope"]): s.value
        for s in families["mercato_scheduler_schedules"].samples
        if s.value
    }
    assert states == {("enabled", "organization"): 2, ("disabled", "organization"): 1, ("finished", "organization"): 1}


async def test_openmetrics_when_the_scraper_asks_for_it(client, bearer, seeded):
    response = await client.get(
        "/metrics", headers={**bearer("root@example.com"), "Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


@pytest.mark.parametrize(
    "who,status",
    [(None, 401), ("bogus", 401), ("owner@acme.test", 403), ("viewer@acme.test", 403), ("root@example.com", 200)],
)
async def test_only_superadmins_may_scrape(client, bearer, who, status):
    headers = {} if who is None else {"Authorization": "Bearer msk_" + "x" * 40} if who == "bogus" else bearer(who)
    response = await client.get("/metrics", headers=headers, follow_redirects=False)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"].startswith("text/plain")


async def test_live_processes_by_kind(client, bearer, app_runtime, clock):
    from app.domain.heartbeats import Heartbeat, ProcessKind

    workers = [Heartbeat(app_runtime, ProcessKind.WORKER) for _ in range(2)]
    stopped = Heartbeat(app_runtime, ProcessKind.POLLER)
    lost = Heartbeat(app_runtime, ProcessKind.ASYNC_SCHEDULER)
    for beat in (lost, stopped):
        await beat.start()
    lost._task.cancel()  # dies silently: lost once three beats pass
    await stopped.stop()
    clock.advance(seconds=31)
    for beat in workers:
        await beat.start()
    try:
        families = await scrape(client, bearer("root@example.com"))
        live = {s.labels["kind"]: s.value for s in families["mercato_scheduler_processes"].samples}
        assert live == {"embedded": 0, "poller": 0, "async-scheduler": 0, "worker": 2}
    finally:
        for beat in workers:
            await beat.stop()
