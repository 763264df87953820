"""The trash: deleted schedules listed in the caller's scope, restored, and purged after the
retention with their runs and audit entries (on SQLite and PostgreSQL, with the passed-in clock)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.domain.actors import ALL_FEATURES, SYSTEM, VIEW, Actor
from app.domain.errors import Conflict, Forbidden, NotFound, ValidationError
from app.domain.history import CLEANUP_JOB_ID, ensure_cleanup_schedule
from app.domain.ids import new_id
from app.domain.registry import TargetRegistry
from app.domain.trash import TrashQuery, purge_deleted_schedules
from app.persistence.models import AuditEntry, Organization, ScheduledJob, ScheduledJobRun
from app.runtime import Runtime
from app.strategies.local import LocalScheduler
from tests.support.clock import utc
from tests.support.factories import job_definition
from tests.support.firing import fire, runs_of

T1 = {"scope_type": "organization", "tenant_id": "t1", "organization_id": "org-1"}
ORG_ADMIN = Actor(id="u1", label="ops@t1", tenant_id="t1", organization_id="org-1", features=ALL_FEATURES)
ORG_VIEWER = Actor(id="u2", label="viewer@t1", tenant_id="t1", organization_id="org-1", features=frozenset({VIEW}))
OTHER_TENANT = Actor(id="u3", label="ops@t2", tenant_id="t2", organization_id="org-9", features=ALL_FEATURES)
OTHER_ORG = Actor(id="u4", label="ops@t1-org2", tenant_id="t1", organization_id="org-2", features=ALL_FEATURES)
NOBODY = Actor(id="u5", label="nobody@t1", tenant_id="t1", organization_id="org-1")


async def make(runtime, job_id: str, **overrides):
    return await runtime.scheduler.create(
        job_definition(T1, id=job_id, name=overrides.pop("name", job_id), schedule_value="0 * * * *", **overrides)
    )


async def test_the_trash_lists_what_the_caller_may_see_newest_deletion_first_with_who_and_when(runtime, clock):
    for job_id, scope in (
        ("t1:first", T1),
        ("t1:second", T1),
        ("t1:tenant-wide", {"scope_type": "tenant", "tenant_id": "t1", "organization_id": None}),
        ("t1:other-org", {**T1, "organization_id": "org-2"}),
        ("t2:secret", {**T1, "tenant_id": "t2", "organization_id": "org-9"}),
        ("system:secret", {"scope_type": "system", "tenant_id": None, "organization_id": None}),
    ):
        await make(runtime, job_id, **scope)
    await make(runtime, "t1:live")
    deletions = [
        ("t1:first", ORG_ADMIN),
        ("t1:tenant-wide", SYSTEM),
        ("t1:other-org", OTHER_ORG),
        ("t2:secret", OTHER_TENANT),
        ("system:secret", SYSTEM),
        ("t1:second", ORG_ADMIN),
    ]
    for job_id, actor in deletions:
        clock.advance(minutes=5)
        await runtime.scheduler.delete(job_id, actor)

    page = await runtime.scheduler.deleted(actor=ORG_ADMIN)
    assert [j.id for j in page.items] == ["t1:second", "t1:tenant-wide", "t1:first"]
    assert page.total == 3 and page.total_exact
    first = page.items[-1]
    assert (first.deleted_by, first.deleted_at) == ("ops@t1", utc(2026, 6, 1, 12, 5))
    assert [j.id for j in (await runtime.scheduler.deleted(actor=ORG_VIEWER)).items] == [j.id for j in page.items]
    assert [j.id for j in (await runtime.scheduler.deleted(actor=OTHER_TENANT)).items] == ["t2:secret"]
    everything = await runtime.scheduler.deleted(actor=SYSTEM)
    assert [j.id for j in everything.items] == [job_id for job_id, _ in reversed(deletions)]
    with pytest.raises(Forbidden):
        await runtime.scheduler.deleted(actor=NOBODY)


async def test_the_trash_is_searched_by_name_or_id_and_paged(runtime):
    for n in range(5):
        await make(runtime, f"t1:report-{n}", name=f"Report {n}")
        await runtime.scheduler.delete(f"t1:report-{n}", ORG_ADMIN)
    await make(runtime, "t1:export", name="Nightly 100% export")
    await runtime.scheduler.delete("t1:export", ORG_ADMIN)
    by_name = await runtime.scheduler.deleted(TrashQuery(search="REPORT"), ORG_ADMIN)
    assert by_name.total == 5
    by_id = await runtime.scheduler.deleted(TrashQuery(search="t1:export"), ORG_ADMIN)
    assert [j.id for j in by_id.items] == ["t1:export"]
    assert [j.id for j in (await runtime.scheduler.deleted(TrashQuery(search="100%"), ORG_ADMIN)).items] == [
        "t1:export"
    ]
    assert (await runtime.scheduler.deleted(TrashQuery(search="0%"), ORG_ADMIN)).total == 1  # % is no wildcard
    assert (await runtime.scheduler.deleted(TrashQuery(search="a\x00b"), ORG_ADMIN)).total == 0
    second = await runtime.scheduler.deleted(TrashQuery(search="report", page=2, page_size=2), ORG_ADMIN)
    assert (second.total, second.pages, len(second.items)) == (5, 3, 2)


async def test_restore_brings_it_back_as_it_was_with_its_next_slot_from_now(runtime, clock):
    job = await make(runtime, "t1:hourly")
    run = await runtime.scheduler.trigger(job.id, ORG_ADMIN)
    await runtime.scheduler.delete(job.id, ORG_ADMIN)
    clock.set(utc(2026, 6, 4, 8, 30))
    restored = await runtime.scheduler.restore(job.id, ORG_ADMIN)
    assert restored.deleted_at is None and restored.deleted_by is None
    assert restored.next_run_at == utc(2026, 6, 4, 9, 0)  # the slots of the three days away are not caught up
    assert await runtime.scheduler.exists(job.id)
    trail = await runtime.scheduler.audit_trail(job.id)
    assert [(e.action, e.actor) for e in trail[:2]] == [("restore", "ops@t1"), ("delete", "ops@t1")]
    assert trail[0].before is None and trail[0].after["name"] == "t1:hourly"
    assert [r.id for r in (await runtime.scheduler.runs(job.id)).items] == [run.id]  # history kept


async def test_a_schedule_paused_when_deleted_comes_back_paused(runtime):
    job = await make(runtime, "t1:paused")
    await runtime.scheduler.disable(job.id, ORG_ADMIN, note="supplier down")
    await runtime.scheduler.delete(job.id, ORG_ADMIN)
    restored = await runtime.scheduler.restore(job.id, ORG_ADMIN)
    assert (restored.is_enabled, restored.pause_note, restored.next_run_at) == (False, "supplier down", None)


async def test_restore_is_refused_for_live_schedules_other_scopes_and_viewers(runtime):
    live = await make(runtime, "t1:live")
    with pytest.raises(Conflict, match="'t1:live' is not deleted"):
        await runtime.scheduler.restore(live.id, ORG_ADMIN)
    gone = await make(runtime, "t1:gone")
    await runtime.scheduler.delete(gone.id, ORG_ADMIN)
    for outsider in (OTHER_TENANT, OTHER_ORG):
        for job_id in (live.id, gone.id, "no-such-schedule"):
            with pytest.raises(NotFound):
                await runtime.scheduler.restore(job_id, outsider)
    with pytest.raises(Forbidden):
        await runtime.scheduler.restore(gone.id, ORG_VIEWER)
    assert not await runtime.scheduler.exists(gone.id)
    assert (await runtime.scheduler.restore(gone.id, ORG_ADMIN)).deleted_at is None
    with pytest.raises(Conflict):  # restored twice (a double click): the second says so
        await runtime.scheduler.restore(gone.id, ORG_ADMIN)


async def test_a_schedule_that_could_not_be_made_today_is_not_restored_and_says_why(runtime):
    async def handler(payload, ctx):
        return None

    before = TargetRegistry()
    before.command("vendor.sync", label="Sync", schedulable=True)(handler)
    after = TargetRegistry()
    after.command("vendor.sync", label="Sync", schedulable=False)(handler)
    old = Runtime.create(runtime.settings, clock=runtime.clock, registry=before)
    new = Runtime.create(runtime.settings, clock=runtime.clock, registry=after)
    try:
        await old.scheduler.create(job_definition(T1, id="t1:sync", target_command="vendor.sync"))
        await old.scheduler.delete("t1:sync")
        with pytest.raises(ValidationError) as refused:
            await new.scheduler.restore("t1:sync", ORG_ADMIN)
        assert refused.value.errors == {"target_command": "cannot restore: command 'vendor.sync' is not schedulable"}
        with pytest.raises(ValidationError) as refused:
            await runtime.scheduler.restore("t1:sync", ORG_ADMIN)  # built-in targets only
        assert refused.value.errors == {"target_command": "cannot restore: unknown command 'vendor.sync'"}
    finally:
        await old.close()
        await new.close()
    assert not await runtime.scheduler.exists("t1:sync")


async def test_a_schedule_of_an_organization_that_is_gone_is_not_restored(runtime):
    job = await make(runtime, "t1:org-2-report", organization_id="org-2")
    await runtime.scheduler.delete(job.id)
    async with runtime.sessions.begin() as session:
        await session.execute(sa.delete(Organization).where(Organization.id == "org-2"))
    with pytest.raises(ValidationError) as refused:
        await runtime.scheduler.restore(job.id)
    assert refused.value.errors == {"organization_id": "cannot restore: tenant 't1' has no organization 'org-2'"}


async def test_an_unregistered_module_schedule_is_in_the_trash_and_comes_back_as_the_modules(runtime):
    registration = {
        **job_definition(T1, id="currencies:rates:org-1", name="Rates", schedule_value="0 */6 * * *"),
        "target_type": "queue",
        "target_queue": "currency-rates",
        "target_command": None,
        "source_module": "currencies",
    }
    await runtime.scheduler.register(registration)
    await runtime.scheduler.unregister("currencies:rates:org-1")
    [trashed] = (await runtime.scheduler.deleted(actor=ORG_ADMIN)).items
    assert (trashed.id, trashed.deleted_by, trashed.source_module) == ("currencies:rates:org-1", "system", "currencies")
    restored = await runtime.scheduler.restore(trashed.id, ORG_ADMIN)
    assert (restored.source_type, restored.source_module) == ("module", "currencies")
    again = await runtime.scheduler.register({**registration, "schedule_value": "0 */3 * * *"})
    assert again.schedule_value == "0 */3 * * *" and again.version == restored.version + 1  # updated in place


async def test_undo_of_a_delete_takes_it_out_of_the_trash_too(runtime):
    job = await make(runtime, "t1:undone")
    await runtime.scheduler.delete(job.id, ORG_ADMIN)
    undone = await runtime.scheduler.undo(job.id, ORG_ADMIN)
    assert (undone.deleted_at, undone.deleted_by) == (None, None)
    assert (await runtime.scheduler.deleted(actor=ORG_ADMIN)).total == 0


async def _counts(runtime, job_id: str) -> tuple[bool, int, int]:
    async with runtime.sessions() as session:
        row = await session.get(ScheduledJob, job_id)
        runs = await session.scalar(sa.select(sa.func.count()).where(ScheduledJobRun.job_id == job_id))
        audit = await session.scalar(sa.select(sa.func.count()).where(AuditEntry.job_id == job_id))
    return row is not None, runs or 0, audit or 0


async def test_schedules_deleted_longer_ago_than_the_retention_go_for_good_with_runs_and_audit(runtime, clock):
    assert runtime.settings.scheduler_trash_retention_days == 30
    old, recent, restored, live = [await make(runtime, f"t1:{n}") for n in ("old", "recent", "restored", "live")]
    for job in (old, recent, restored, live):
        await runtime.scheduler.trigger(job.id)
    await runtime.scheduler.delete(old.id, ORG_ADMIN)
    await runtime.scheduler.delete(restored.id, ORG_ADMIN)
    clock.advance(days=20)
    await runtime.scheduler.delete(recent.id, ORG_ADMIN)
    await runtime.scheduler.restore(restored.id, ORG_ADMIN)
    clock.advance(days=10, seconds=1)  # the old one was deleted 30 days and a second ago

    purged = await purge_deleted_schedules(runtime)
    assert (purged.schedules, purged.runs, purged.audit_entries) == (1, 1, 2)  # create and delete
    assert await _counts(runtime, old.id) == (False, 0, 0)
    assert await _counts(runtime, recent.id) == (True, 1, 2)
    assert await _counts(runtime, restored.id) == (True, 1, 3)
    assert await _counts(runtime, live.id) == (True, 1, 1)
    with pytest.raises(NotFound):
        await runtime.scheduler.restore(old.id)
    assert (await purge_deleted_schedules(runtime)).schedules == 0
    assert (await purge_deleted_schedules(runtime, days=5)).schedules == 1  # recent: deleted 10 days ago


async def test_a_large_purge_goes_in_batches_and_leaves_a_new_schedules_rows_alone(runtime, clock):
    jobs = [await make(runtime, f"t1:bulk-{n}") for n in range(5)]
    for job in jobs:
        for _ in range(3):
            await runtime.scheduler.trigger(job.id)
        await runtime.scheduler.delete(job.id)
    clock.advance(days=31)
    # A schedule made again under a purged id between its batch and its runs' batches keeps its run.
    fresh = ScheduledJobRun(
        id=new_id(),
        job_id=jobs[0].id,
        tenant_id="t1",
        organization_id="org-1",
        scheduled_for=clock(),
        trigger="manual",
        status="queued",
        attempt=1,
        created_at=clock(),
    )
    async with runtime.sessions.begin() as session:
        session.add(fresh)
    purged = await purge_deleted_schedules(runtime, batch=2, run_batch=2)
    assert (purged.schedules, purged.runs, purged.audit_entries) == (5, 15, 10)
    async with runtime.sessions() as session:
        left = list(await session.scalars(sa.select(ScheduledJobRun.id)))
        assert await session.scalar(sa.select(sa.func.count()).select_from(ScheduledJob)) == 0
    assert left == [fresh.id]


async def test_the_retention_comes_from_the_environment(runtime):
    from app.settings import SettingsError, load_settings

    assert load_settings({"SCHEDULER_TRASH_RETENTION_DAYS": "90"}).scheduler_trash_retention_days == 90
    with pytest.raises(SettingsError, match="SCHEDULER_TRASH_RETENTION_DAYS must be between 1 and 3650"):
        load_settings({"SCHEDULER_TRASH_RETENTION_DAYS": "0"})


async def test_delete_records_who_deleted_and_the_detail_read_includes_deleted_on_request(runtime):
    job = await make(runtime, "t1:detail")
    await runtime.scheduler.delete(job.id, ORG_ADMIN)
    with pytest.raises(NotFound):
        await runtime.scheduler.get(job.id, ORG_ADMIN)
    seen = await runtime.scheduler.get(job.id, ORG_VIEWER, include_deleted=True)
    assert (seen.deleted_by, seen.deleted_at is not None) == ("ops@t1", True)
    with pytest.raises(NotFound):
        await runtime.scheduler.get(job.id, OTHER_TENANT, include_deleted=True)


async def test_the_daily_cleanup_schedule_purges_the_trash(runtime, clock):
    await ensure_cleanup_schedule(runtime.scheduler)
    job = await make(runtime, "t1:forgotten")
    await runtime.scheduler.delete(job.id, ORG_ADMIN)
    clock.set(utc(2026, 7, 2, 3, 17))
    await fire(LocalScheduler(runtime))
    [run] = [r for r in await runs_of(runtime, CLEANUP_JOB_ID) if r.status != "missed"]  # a month of slots away
    assert (run.status, run.result) == ("succeeded", {"deleted": 0, "purgedSchedules": 1})
    assert await _counts(runtime, job.id) == (False, 0, 0)
