"""Runs across schedules, at the service: counts stop at the cap, scopes hold, moments are read."""

from __future__ import annotations

import pytest

from app.domain import run_listing
from app.domain.actors import SYSTEM, Actor
from app.domain.errors import Forbidden, ValidationError
from app.domain.ids import new_id
from app.domain.run_listing import AllRunsQuery, browse_runs, parse_moment, scope_choices
from app.persistence.models import ScheduledJobRun
from tests.support.clock import utc
from tests.support.runs import world_with_runs

ACME_EU_ADMIN = Actor("u1", "owner@acme.test", "acme", "acme-eu", frozenset({"scheduler.jobs.view"}))
ACME_ADMIN = Actor("u2", "boss@acme.test", "acme", None, frozenset({"scheduler.jobs.view"}))
NO_VIEW = Actor("u3", "nobody@acme.test", "acme", "acme-eu", frozenset())


async def test_counts_stop_at_the_cap_and_say_so(runtime, monkeypatch):
    await world_with_runs(runtime, runtime.clock())
    monkeypatch.setattr(run_listing, "COUNT_CAP", 5)
    overview = await browse_runs(runtime, AllRunsQuery(), SYSTEM)
    counts = {c.status: (c.count, c.exact) for c in overview.counts if c.count}
    assert counts == {"succeeded": (5, False), "failed": (5, False)}
    assert (overview.page.total, overview.page.total_exact) == (10, False)


async def test_a_run_under_a_schedule_of_another_scope_is_counted_by_its_own_scope_but_not_shown(runtime):
    made = await world_with_runs(runtime, runtime.clock())
    stray = ScheduledJobRun(  # acme-eu's run under globex's schedule (an id takeover once allowed it)
        id=new_id(),
        job_id="globex:export",
        tenant_id="acme",
        organization_id="acme-eu",
        scheduled_for=runtime.clock(),
        trigger="manual",
        status="failed",
        attempt=1,
        created_at=runtime.clock(),
    )
    async with runtime.sessions.begin() as session:
        session.add(stray)
    overview = await browse_runs(runtime, AllRunsQuery(status="failed", page_size=100), ACME_EU_ADMIN)
    shown = [item.run.id for item in overview.page.items]
    assert stray.id not in shown and made["acme_eu"][0] in shown
    assert "globex:export" not in {item.run.job_id for item in overview.page.items}
    everything = await browse_runs(runtime, AllRunsQuery(status="failed", page_size=100), SYSTEM)
    assert stray.id in [item.run.id for item in everything.page.items]


async def test_a_user_of_a_whole_tenant_sees_every_organization_of_it(runtime):
    await world_with_runs(runtime, runtime.clock())
    overview = await browse_runs(runtime, AllRunsQuery(page_size=100), ACME_ADMIN)
    assert {item.run.job_id for item in overview.page.items} == {
        "acme-eu:export",
        "acme:invoices",
        "acme-eu:old-feed",
        "acme-us:sync",
    }
    narrowed = await browse_runs(runtime, AllRunsQuery(organization_id="acme-us", page_size=100), ACME_ADMIN)
    assert {item.run.job_id for item in narrowed.page.items} == {"acme-us:sync"}


async def test_without_the_view_permission_nothing_is_listed(runtime):
    with pytest.raises(Forbidden):
        await browse_runs(runtime, AllRunsQuery(), NO_VIEW)


async def test_the_filter_choices_follow_what_a_user_may_see(runtime):
    superadmin = await scope_choices(runtime, SYSTEM, "acme")
    assert {"acme", "globex", "t1"} <= set(superadmin.tenants) and superadmin.organizations == ["acme-eu", "acme-us"]
    tenant_wide = await scope_choices(runtime, ACME_ADMIN, "globex")  # their own tenant, whatever is asked
    assert tenant_wide.tenants == [] and tenant_wide.organizations == ["acme-eu", "acme-us"]
    assert await scope_choices(runtime, ACME_EU_ADMIN) == run_listing.ScopeChoices([], [])


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1h", utc(2026, 6, 1, 11, 0)),
        ("90m", utc(2026, 6, 1, 10, 30)),
        ("7d", utc(2026, 5, 25, 12, 0)),
        ("1h30m", utc(2026, 6, 1, 10, 30)),
        ("2026-06-01T09:00:00+02:00", utc(2026, 6, 1, 7, 0)),
        ("2026-06-01T09:00:00Z", utc(2026, 6, 1, 9, 0)),
    ],
)
def test_moments_are_durations_back_from_now_or_instants_with_an_offset(text, expected):
    assert parse_moment(text, utc(2026, 6, 1, 12, 0), name="since") == expected


@pytest.mark.parametrize(
    "text", ["yesterday", "1y", "0h", "367d", "2026-06-01T09:00:00", "9999-12-31T23:59:59Z", "-1h"]
)
def test_unreadable_moments_are_named(text):
    with pytest.raises(ValidationError) as caught:
        parse_moment(text, utc(2026, 6, 1, 12, 0), name="since")
    assert list(caught.value.errors) == ["since"]
