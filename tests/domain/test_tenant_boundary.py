"""The tenant boundary in the service: a schedule, run or audit entry outside your scope does not
exist for you, cannot be taken over by id, and no target reaches past the scope it may run in
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domain.actors import ALL_FEATURES, SYSTEM, VIEW, Actor
from app.domain.errors import NotFound, ValidationError
from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.strategies.local import LocalScheduler
from tests.domain.test_service import ORG_ADMIN, OTHER_TENANT, registration
from tests.support.factories import job_definition
from tests.support.firing import fire, reload, runs_of

CLEANUP = "scheduler.history.cleanup"
#: Tenant t1's admin (no organization: manages the tenant's and all its organizations' schedules).
T1_ADMIN = Actor(id="u5", label="admin@t1", tenant_id="t1", features=ALL_FEATURES)
T2_VIEWER = Actor(id="u6", label="viewer@t2", tenant_id="t2", organization_id="org-9", features=frozenset({VIEW}))
ROOT = Actor(id="u0", label="root", features=ALL_FEATURES, is_superadmin=True)


def tenant_job(tenant: str = "t1", **overrides):
    return job_definition(scope_type="tenant", tenant_id=tenant, **overrides)


@pytest.fixture
def poller(runtime):
    return LocalScheduler(runtime)


# ----- 1. targets declare their scopes: the history cleanup is system-only ---------------------


@pytest.mark.parametrize("actor, scope", [(T1_ADMIN, "tenant"), (ORG_ADMIN, "organization"), (ROOT, "tenant")])
async def test_the_history_cleanup_cannot_be_scheduled_outside_system_scope(runtime, actor, scope):
    data = job_definition(
        scope_type=scope,
        tenant_id="t1",
        organization_id="org-1" if scope == "organization" else None,
        target_command=CLEANUP,
        target_payload={"days": 1},
    )
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.create(data, actor)
    assert raised.value.errors == {"target_command": f"command '{CLEANUP}' can only be scheduled in system scope"}
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.import_many([{**data, "id": "cleanup-everything"}], actor)
    assert "[0].target_command" in raised.value.errors
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.register({**data, "id": "sneaky:cleanup"})
    assert "target_command" in raised.value.errors
    # In its own scope it is fine.
    await runtime.scheduler.create(job_definition(target_command=CLEANUP), ROOT)


async def test_a_tenant_schedule_of_the_cleanup_made_before_scopes_existed_never_runs(runtime, clock, poller):
    other = await runtime.scheduler.create(tenant_job("t2", name="Other tenant's job", is_enabled=False))
    await runtime.scheduler.trigger(other.id)
    await fire(poller)
    [kept] = await runs_of(runtime, other.id)
    legacy = await runtime.scheduler.create(
        tenant_job(name="Cleanup", target_command="demo.echo", is_enabled=False), T1_ADMIN
    )
    async with runtime.sessions.begin() as session:  # as an earlier version stored it
        await session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.id == legacy.id)
            .values(target_command=CLEANUP, target_payload={"days": 1})
        )
    clock.advance(days=3)
    await runtime.scheduler.trigger(legacy.id, T1_ADMIN)
    await fire(poller)
    [run] = await runs_of(runtime, legacy.id)
    assert run.status == "failed"
    assert run.error_message == f"command '{CLEANUP}' may only run for system schedules, not for a tenant schedule"
    assert [r.id for r in await runs_of(runtime, other.id)] == [kept.id]


# ----- 2. an id held outside your scope is never taken ------------------------------------------


async def _deleted_with_history(runtime, poller, actor, **data):
    job = await runtime.scheduler.create(data, actor)
    await runtime.scheduler.trigger(job.id, actor)
    await fire(poller)
    await runtime.scheduler.delete(job.id, actor)
    return job


@pytest.mark.parametrize("deleted", [True, False])
async def test_another_tenants_id_is_not_available_live_or_deleted(runtime, poller, deleted):
    secret = tenant_job("t2", id="tB-pay", target_payload={"message": "secret"})
    if deleted:
        await _deleted_with_history(runtime, poller, SYSTEM, **secret)
    else:
        await runtime.scheduler.create(secret)
    mine = tenant_job("t1", id="tB-pay")
    for attempt in (
        lambda: runtime.scheduler.create(mine, T1_ADMIN),
        lambda: runtime.scheduler.import_many([mine], T1_ADMIN),
    ):
        with pytest.raises(ValidationError) as raised:
            await attempt()
        [message] = raised.value.errors.values()
        assert message == "the id 'tB-pay' is not available; choose another"  # the same words either way
    job = await reload(runtime, "tB-pay")
    assert (job.tenant_id, job.target_payload) == ("t2", {"message": "secret"})
    if deleted:  # still B's to bring back
        assert (await runtime.scheduler.undo("tB-pay", OTHER_TENANT)).deleted_at is None


async def test_a_superadmins_deleted_system_schedule_keeps_its_id(runtime, poller):
    await _deleted_with_history(runtime, poller, ROOT, **job_definition(id="sys-billing"))
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.create(tenant_job(id="sys-billing"), T1_ADMIN)
    assert raised.value.errors == {"id": "the id 'sys-billing' is not available; choose another"}
    # Nor does a superadmin move it to a tenant by making it again.
    with pytest.raises(ValidationError):
        await runtime.scheduler.create(tenant_job(id="sys-billing"), ROOT)


async def test_a_deleted_schedule_of_your_own_scope_can_be_made_again(runtime, poller):
    await _deleted_with_history(runtime, poller, T1_ADMIN, **tenant_job(id="mine"))
    job = await runtime.scheduler.create(tenant_job(id="mine", name="Again"), T1_ADMIN)
    assert job.deleted_at is None and job.name == "Again"
    assert len((await runtime.scheduler.runs("mine", actor=T1_ADMIN)).items) == 1


async def test_runs_and_audit_entries_are_authorized_by_their_own_scope(runtime, poller):
    """Even if a schedule's scope changed under its history (as ids could be taken over before),
    its old runs and audit entries stay their tenant's."""
    job = await _deleted_with_history(runtime, poller, SYSTEM, **tenant_job("t2", id="tB-pay"))
    [run] = await runs_of(runtime, job.id)
    async with runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id == job.id).values(tenant_id="t1", deleted_at=None)
        )
    assert (await runtime.scheduler.runs(job.id, actor=T1_ADMIN)).items == []
    assert await runtime.scheduler.audit_trail(job.id, T1_ADMIN) == []
    for lookup in (
        lambda: runtime.scheduler.find_run(run.id, T1_ADMIN),
        lambda: runtime.scheduler.get_run(job.id, run.id, T1_ADMIN),
    ):
        with pytest.raises(NotFound):
            await lookup()


# ----- 5. a registration never takes over a row made elsewhere ----------------------------------


async def test_registration_refuses_a_users_schedule_and_another_scope(runtime):
    squatted = await runtime.scheduler.create(tenant_job(id="currencies:fetch-rates:o9", is_enabled=False), T1_ADMIN)
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.register(registration(id=squatted.id, tenant_id="t2", organization_id="org-9"))
    assert raised.value.errors == {
        "id": (
            "schedule 'currencies:fetch-rates:o9' was made by a user, not by this registration "
            "(module 'currencies'); register under another id"
        )
    }
    module = await runtime.scheduler.register(registration())
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.register_many([registration(id=module.id, tenant_id="t2", organization_id="org-9")])
    assert raised.value.errors == {
        "[0].id": (
            "schedule 'currencies:fetch-rates:org-1' belongs to organization 'org-1' of tenant 't1'; a registration "
            "cannot move it to organization 'org-9' of tenant 't2'; register under another id"
        )
    }
    with pytest.raises(ValidationError):
        await runtime.scheduler.register(registration(source_module="billing"))
    assert (await reload(runtime, squatted.id)).tenant_id == "t1"
    assert (await reload(runtime, module.id)).tenant_id == "t1"


async def test_registration_refuses_a_deleted_row_of_another_scope(runtime):
    await runtime.scheduler.register(registration())
    await runtime.scheduler.unregister("currencies:fetch-rates:org-1")
    with pytest.raises(ValidationError):
        await runtime.scheduler.register(registration(tenant_id="t2", organization_id="org-9"))
    assert (await runtime.scheduler.register(registration())).deleted_at is None


# ----- 6. tenants and organizations must exist and belong together -------------------------------


@pytest.mark.parametrize(
    "actor, data, field, message",
    [
        (ROOT, tenant_job("acmee"), "tenant_id", "there is no tenant 'acmee'"),
        (
            ROOT,
            job_definition(scope_type="organization", tenant_id="t1", organization_id="org-9"),
            "organization_id",
            "tenant 't1' has no organization 'org-9'",
        ),
        (
            OTHER_TENANT.__class__(id="u7", label="admin@t2", tenant_id="t2", features=ALL_FEATURES),
            job_definition(scope_type="organization", tenant_id="t2", organization_id="org-1"),
            "organization_id",
            "tenant 't2' has no organization 'org-1'",
        ),
        (
            ROOT,
            job_definition(scope_type="organization", tenant_id="t1", organization_id="nowhere"),
            "organization_id",
            "tenant 't1' has no organization 'nowhere'",
        ),
    ],
)
async def test_scopes_must_exist_on_every_path(runtime, actor, data, field, message):
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.create(data, actor)
    assert raised.value.errors == {field: message}
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.import_many([{**data, "id": "imported"}], actor)
    assert raised.value.errors == {f"[0].{field}": message}
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.register({**data, "id": "module:job", "source_module": "m"})
    assert raised.value.errors == {field: message}
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.register_many([registration(), {**data, "id": "module:job", "source_module": "m"}])
    assert raised.value.errors == {f"[1].{field}": message}
    assert (await runtime.scheduler.counts())["total"] == 0


# ----- 10. smaller inconsistencies ---------------------------------------------------------------


async def test_undoing_a_delete_keeps_the_pause_and_a_disable_records_its_note(runtime, clock):
    job = await runtime.scheduler.create(tenant_job(), T1_ADMIN)
    paused = await runtime.scheduler.disable(job.id, T1_ADMIN, note="provider outage")
    [disable, _] = await runtime.scheduler.audit_trail(job.id, T1_ADMIN)
    assert disable.after["pause_note"] == "provider outage" and disable.before["pause_note"] is None
    clock.advance(minutes=5)
    await runtime.scheduler.delete(job.id, T1_ADMIN)
    back = await runtime.scheduler.undo(job.id, T1_ADMIN)
    assert (back.is_enabled, back.pause_note, back.paused_by, back.paused_at) == (
        False,
        "provider outage",
        "admin@t1",
        paused.paused_at,
    )
    # Undoing an enable brings the pause back too.
    await runtime.scheduler.enable(job.id, T1_ADMIN)
    back = await runtime.scheduler.undo(job.id, T1_ADMIN)
    assert (back.is_enabled, back.pause_note, back.paused_at) == (False, "provider outage", paused.paused_at)
    assert back.paused_at == clock() - timedelta(minutes=5)


async def test_every_bad_schedule_field_is_named_at_once(runtime):
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.create(job_definition(timezone="Mars/Olympus", schedule_value="61 * * * *"))
    assert set(raised.value.errors) == {"timezone", "schedule_value"}
    with pytest.raises(ValidationError) as raised:
        await runtime.scheduler.create(job_definition(id="bad id!", name=""))
    assert set(raised.value.errors) == {"id", "name"}


async def test_a_view_only_user_of_another_tenant_sees_no_run(runtime, poller):
    job = await runtime.scheduler.create(tenant_job("t1"), T1_ADMIN)
    run = await runtime.scheduler.trigger(job.id, T1_ADMIN)
    await fire(poller)
    for lookup in (
        lambda: runtime.scheduler.find_run(run.id, T2_VIEWER),
        lambda: runtime.scheduler.runs(job.id, actor=T2_VIEWER),
    ):
        with pytest.raises(NotFound):
            await lookup()
    async with runtime.sessions() as session:
        assert await session.get(ScheduledJobRun, run.id) is not None
