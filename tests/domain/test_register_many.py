"""register_many: module registration in bulk, with register's semantics (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.errors import ValidationError
from tests.domain.test_service import ORG_ADMIN, registration

UTC = UTC


def per_org(n: int, **overrides):
    return [
        registration(id=f"currencies:fetch-rates:org-{i}", organization_id=f"org-{i}", **overrides) for i in range(n)
    ]


@pytest.fixture(autouse=True)
async def organizations(runtime):
    for i in range(5):
        await runtime.users.ensure_scope("t1", f"org-{i}")


async def test_it_creates_every_schedule_with_its_next_slot_and_an_audit_entry(runtime):
    outcome = await runtime.scheduler.register_many(per_org(3))
    assert outcome == [(f"currencies:fetch-rates:org-{i}", "create") for i in range(3)]
    for job_id, _ in outcome:
        job = await runtime.scheduler.get(job_id)
        assert job.source_type == "module" and job.version == 1 and job.created_by == "system"
        assert job.next_run_at == datetime(2026, 6, 1, 18, 0, tzinfo=UTC)
        assert [e.action for e in await runtime.scheduler.audit_trail(job.id)] == ["create"]


async def test_it_writes_nothing_for_unchanged_ones_and_updates_changed_ones_keeping_ops_pause(runtime):
    await runtime.scheduler.register_many(per_org(2))
    await runtime.scheduler.disable("currencies:fetch-rates:org-1", ORG_ADMIN, note="provider outage")
    items = per_org(2)
    items[1]["schedule_value"] = "0 * * * *"
    items[1]["is_enabled"] = True
    assert await runtime.scheduler.register_many(items) == [
        ("currencies:fetch-rates:org-0", "unchanged"),
        ("currencies:fetch-rates:org-1", "update"),
    ]
    same, changed = [await runtime.scheduler.get(f"currencies:fetch-rates:org-{i}") for i in range(2)]
    assert same.version == 1
    assert [e.action for e in await runtime.scheduler.audit_trail(same.id)] == ["create"]
    assert changed.schedule_value == "0 * * * *"
    assert changed.is_enabled is False and changed.pause_note == "provider outage"
    assert [e.action for e in await runtime.scheduler.audit_trail(changed.id)] == ["update", "disable", "create"]


async def test_it_brings_back_a_deleted_schedule(runtime):
    await runtime.scheduler.register_many(per_org(1))
    await runtime.scheduler.unregister("currencies:fetch-rates:org-0")
    assert await runtime.scheduler.register_many(per_org(1)) == [("currencies:fetch-rates:org-0", "create")]
    job = await runtime.scheduler.get("currencies:fetch-rates:org-0")
    assert job.deleted_at is None and job.version == 3  # created, deleted, created again
    assert await runtime.scheduler.exists(job.id)


async def test_it_is_all_or_nothing_with_errors_keyed_by_index(runtime):
    items = per_org(3)
    items[2]["schedule_value"] = "not a schedule"
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.register_many(items)
    assert list(raised.value.errors) == ["[2].schedule_value"]
    assert not await runtime.scheduler.exists("currencies:fetch-rates:org-0")


async def test_it_refuses_the_same_id_twice(runtime):
    items = per_org(2) + per_org(1)
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.register_many(items)
    assert raised.value.errors == {"[2].id": "'currencies:fetch-rates:org-0' appears more than once"}
