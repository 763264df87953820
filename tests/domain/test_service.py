"""SchedulerService: the public Python API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.actors import ALL_FEATURES, VIEW, Actor
from app.domain.errors import Conflict, Forbidden, NotFound, ValidationError
from app.domain.listing import JobQuery
from app.persistence.models import ScheduledJobRun

UTC = UTC


def registration(**overrides):
    data = {
        "id": "currencies:fetch-rates:org-1",
        "name": "Fetch currency rates",
        "scope_type": "organization",
        "tenant_id": "t1",
        "organization_id": "org-1",
        "schedule_type": "cron",
        "schedule_value": "0 */6 * * *",
        "target_type": "queue",
        "target_queue": "currency-rates",
        "target_payload": {"symbols": ["USD"]},
        "source_module": "currencies",
    }
    data.update(overrides)
    return data


ORG_ADMIN = Actor(id="u1", label="ops@t1", tenant_id="t1", organization_id="org-1", features=ALL_FEATURES)
ORG_VIEWER = Actor(id="u2", label="viewer@t1", tenant_id="t1", organization_id="org-1", features=frozenset({VIEW}))
OTHER_TENANT = Actor(id="u3", label="ops@t2", tenant_id="t2", organization_id="org-9", features=ALL_FEATURES)
OTHER_ORG = Actor(id="u4", label="ops@t1-org2", tenant_id="t1", organization_id="org-2", features=ALL_FEATURES)


async def test_register_creates_a_module_schedule_with_its_next_slot(runtime, clock):
    job = await runtime.scheduler.register(registration())
    assert job.source_type == "module" and job.source_module == "currencies"
    assert job.next_run_at == datetime(2026, 6, 1, 18, 0, tzinfo=UTC)
    assert await runtime.scheduler.exists(job.id)
    assert [j.id for j in await runtime.scheduler.find_by_module("currencies")] == [job.id]


async def test_register_again_updates_in_place_and_keeps_ops_pause(runtime):
    await runtime.scheduler.register(registration())
    await runtime.scheduler.disable("currencies:fetch-rates:org-1", ORG_ADMIN, note="provider outage")
    job = await runtime.scheduler.register(registration(schedule_value="0 * * * *", is_enabled=True))
    assert job.schedule_value == "0 * * * *"
    assert job.is_enabled is False and job.pause_note == "provider outage"
    trail = await runtime.scheduler.audit_trail(job.id)
    assert [e.action for e in trail] == ["update", "disable", "create"]


async def test_register_unchanged_writes_nothing(runtime):
    first = await runtime.scheduler.register(registration())
    again = await runtime.scheduler.register(registration())
    assert again.version == first.version
    assert len(await runtime.scheduler.audit_trail(first.id)) == 1


async def test_unregister_soft_deletes(runtime):
    await runtime.scheduler.register(registration())
    assert await runtime.scheduler.unregister("currencies:fetch-rates:org-1") is True
    assert not await runtime.scheduler.exists("currencies:fetch-rates:org-1")
    assert await runtime.scheduler.unregister("currencies:fetch-rates:org-1") is False
    with pytest.raises(NotFound):
        await runtime.scheduler.get("currencies:fetch-rates:org-1")


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"schedule_value": "61 * * * *"}, "schedule_value", "minute field: 61 is out of range 0-59"),
        ({"timezone": "Europe/Berln"}, "timezone", "unknown timezone 'Europe/Berln'"),
        ({"schedule_type": "interval", "schedule_value": "5s"}, "schedule_value", "interval must be at least 10s"),
        ({"schedule_value": "0 0 30 2 *"}, "schedule_value", "this cron never fires"),
        ({"target_queue": "nope"}, "target_queue", "unknown queue 'nope'"),
        ({"target_type": "command", "target_command": None}, "target_command", "choose a command for a command target"),
        ({"scope_type": "system"}, "tenant_id", "a system schedule has no tenant"),
        ({"organization_id": None}, "organization_id", "an organization schedule needs an organization"),
        ({"target_payload": [1, 2]}, "target_payload", "payload must be a JSON object"),
        ({"target_payload": "{not json"}, "target_payload", "payload is not valid JSON"),
        ({"target_payload": {"x": "a" * 70_000}}, "target_payload", "the limit is 65,536"),
        ({"name": "  "}, "name", "name is required"),
        ({"jitter_seconds": -1}, "jitter_seconds", "must be between 0 and 3600"),
        ({"max_retries": "many"}, "max_retries", "must be a whole number"),
        ({"catch_up_policy": "sometimes"}, "catch_up_policy", "catch-up policy must be one of"),
        ({"start_at": "2026-07-01T00:00", "end_at": "2026-06-01T00:00"}, "end_at", "end must be after start"),
        ({"colour": "blue"}, "colour", "unknown field"),
    ],
)
async def test_invalid_registrations_are_refused_with_a_field_message(runtime, overrides, field, message):
    with pytest.raises(ValidationError) as caught:
        await runtime.scheduler.register(registration(**overrides))
    assert message in caught.value.errors[field]
    assert not await runtime.scheduler.exists("currencies:fetch-rates:org-1")


async def test_only_schedulable_targets_can_be_scheduled(runtime):
    @runtime.registry.command("tests.internal-only", label="Internal")
    async def internal(payload, ctx):
        return None

    try:
        with pytest.raises(ValidationError) as caught:
            await runtime.scheduler.register(registration(target_type="command", target_command="tests.internal-only"))
        assert caught.value.errors["target_command"] == "command 'tests.internal-only' is not schedulable"
    finally:
        runtime.registry._targets.pop(("command", "tests.internal-only"))


async def test_update_recomputes_next_run_and_bumps_version(runtime, clock):
    job = await runtime.scheduler.register(registration())
    updated = await runtime.scheduler.update(job.id, {"schedule_value": "30 12 * * *"}, ORG_ADMIN)
    assert updated.version == job.version + 1
    assert updated.next_run_at == datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    assert (await runtime.scheduler.get(job.id)).next_run_at == datetime(2026, 6, 1, 12, 30, tzinfo=UTC)


async def test_stale_update_is_refused(runtime):
    job = await runtime.scheduler.register(registration())
    await runtime.scheduler.update(job.id, {"name": "First editor"}, ORG_ADMIN, expected_version=job.version)
    with pytest.raises(Conflict, match="changed by someone else"):
        await runtime.scheduler.update(job.id, {"name": "Second editor"}, ORG_ADMIN, expected_version=job.version)
    assert (await runtime.scheduler.get(job.id)).name == "First editor"


async def test_scope_cannot_change_on_update(runtime):
    job = await runtime.scheduler.register(registration())
    with pytest.raises(ValidationError) as caught:
        await runtime.scheduler.update(job.id, {"scope_type": "tenant", "organization_id": None})
    assert "cannot change" in caught.value.errors["scope_type"]


async def test_disable_and_enable(runtime, clock):
    job = await runtime.scheduler.register(registration())
    paused = await runtime.scheduler.disable(job.id, ORG_ADMIN, note="holiday")
    assert paused.is_enabled is False and paused.next_run_at is None
    assert paused.pause_note == "holiday" and paused.paused_by == "ops@t1"
    clock.advance(hours=7)
    resumed = await runtime.scheduler.enable(job.id, ORG_ADMIN)
    assert resumed.is_enabled is True and resumed.pause_note is None
    # Slots during the pause are not made up: the next slot is after the moment of enabling.
    assert resumed.next_run_at == datetime(2026, 6, 2, 0, 0, tzinfo=UTC)


async def test_undo_reverts_the_last_change_including_delete(runtime):
    job = await runtime.scheduler.register(registration())
    await runtime.scheduler.update(job.id, {"name": "Renamed"}, ORG_ADMIN)
    restored = await runtime.scheduler.undo(job.id, ORG_ADMIN)
    assert restored.name == "Fetch currency rates"
    await runtime.scheduler.delete(job.id, ORG_ADMIN)
    assert not await runtime.scheduler.exists(job.id)
    revived = await runtime.scheduler.undo(job.id, ORG_ADMIN)
    assert revived.deleted_at is None and revived.next_run_at is not None
    actions = [e.action for e in await runtime.scheduler.audit_trail(job.id)]
    assert actions == ["undo", "delete", "undo", "update", "create"]


async def test_other_tenant_and_other_org_cannot_see_a_schedule(runtime):
    job = await runtime.scheduler.register(registration())
    for outsider in (OTHER_TENANT, OTHER_ORG):
        with pytest.raises(NotFound):
            await runtime.scheduler.get(job.id, outsider)
        with pytest.raises(NotFound):
            await runtime.scheduler.update(job.id, {"name": "x"}, outsider)
        with pytest.raises(NotFound):
            await runtime.scheduler.trigger(job.id, outsider)
        assert (await runtime.scheduler.list(JobQuery(), outsider)).items == []
    assert [j.id for j in (await runtime.scheduler.list(JobQuery(), ORG_VIEWER)).items] == [job.id]


async def test_viewer_sees_but_cannot_change(runtime):
    job = await runtime.scheduler.register(registration())
    assert (await runtime.scheduler.get(job.id, ORG_VIEWER)).id == job.id
    with pytest.raises(Forbidden):
        await runtime.scheduler.update(job.id, {"name": "x"}, ORG_VIEWER)
    with pytest.raises(Forbidden):
        await runtime.scheduler.trigger(job.id, ORG_VIEWER)
    with pytest.raises(Forbidden):
        await runtime.scheduler.create(registration(id=None), ORG_VIEWER)


async def test_users_cannot_create_outside_their_scope(runtime):
    with pytest.raises(ValidationError) as caught:
        await runtime.scheduler.create(registration(id=None, tenant_id="t2", organization_id="org-9"), ORG_ADMIN)
    assert "own tenant" in caught.value.errors["tenant_id"]
    with pytest.raises(ValidationError) as caught:
        await runtime.scheduler.create(
            registration(id=None, scope_type="system", tenant_id=None, organization_id=None), ORG_ADMIN
        )
    assert "superadmins" in caught.value.errors["scope_type"]


async def test_system_schedules_are_for_superadmins_only(runtime):
    job = await runtime.scheduler.register(
        registration(id="core:cleanup", scope_type="system", tenant_id=None, organization_id=None)
    )
    with pytest.raises(NotFound):
        await runtime.scheduler.get(job.id, ORG_ADMIN)


async def test_trigger_queues_a_manual_run_recorded_with_the_user(runtime, clock):
    job = await runtime.scheduler.register(registration())
    run = await runtime.scheduler.trigger(job.id, ORG_ADMIN)
    async with runtime.sessions() as session:
        stored = await session.get(ScheduledJobRun, run.id)
    assert (stored.trigger, stored.status, stored.triggered_by) == ("manual", "queued", "ops@t1")
    assert stored.scheduled_for == clock()


async def test_list_filters_searches_sorts_and_pages(runtime):
    for i in range(7):
        await runtime.scheduler.register(
            registration(
                id=f"reports:{i}",
                name=f"Report {i}",
                target_type="command",
                target_command="reports.sales-summary",
                source_module="reports",
            )
        )
    await runtime.scheduler.register(registration())
    await runtime.scheduler.disable("reports:3")
    page = await runtime.scheduler.list(JobQuery(search="report", sort="name", order="desc", page=2, page_size=3))
    assert [j.name for j in page.items] == ["Report 3", "Report 2", "Report 1"]
    assert page.total == 7 and page.pages == 3
    disabled = await runtime.scheduler.list(JobQuery(is_enabled=False))
    assert [j.id for j in disabled.items] == ["reports:3"]
    queues = await runtime.scheduler.list(JobQuery(target_type="queue"))
    assert [j.id for j in queues.items] == ["currencies:fetch-rates:org-1"]
    percent = await runtime.scheduler.list(JobQuery(search="%"))
    assert percent.items == []


async def test_counts(runtime, clock):
    await runtime.scheduler.register(registration())
    await runtime.scheduler.register(registration(id="x:2", schedule_value="* * * * *"))
    await runtime.scheduler.disable("x:2")
    assert await runtime.scheduler.counts() == {"total": 2, "enabled": 1, "due_now": 0}


async def test_audit_entries_record_who_and_before_after(runtime):
    job = await runtime.scheduler.register(registration())
    await runtime.scheduler.update(job.id, {"name": "New name"}, ORG_ADMIN)
    entry = (await runtime.scheduler.audit_trail(job.id))[0]
    assert entry.actor == "ops@t1"
    assert entry.before["name"] == "Fetch currency rates" and entry.after["name"] == "New name"
