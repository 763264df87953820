"""Only targets registered as schedulable can be scheduled or triggered, by any path.

A module may declare a command or queue worker that is not meant to be run on a timer (an
internal maintenance command, a queue fed by an event). Every path that makes or changes a
schedule refuses it: the service (create, register, update, import), the admin form, the JSON
API, an import file. A schedule whose target stops being schedulable later (a new release of the
module) keeps its history, but every run of it, scheduled or manual, fails with the reason.
"""

from __future__ import annotations

import httpx
import pytest

from app.domain.errors import ValidationError
from app.domain.registry import TargetRegistry
from app.runtime import Runtime
from app.strategies.local import LocalScheduler
from app.web.app import create_app
from tests.support.factories import job_definition
from tests.support.firing import fire, runs_of
from tests.support.http import API, LIST, csrf_from, login
from tests.support.personas import PASSWORD, PASSWORD_HASH


def registry_with(*, internal_schedulable: bool) -> TargetRegistry:
    registry = TargetRegistry()

    async def handler(payload, ctx):
        return {"ran": True}

    registry.command("public.report", label="Report", schedulable=True)(handler)
    registry.command("internal.purge", label="Purge everything", schedulable=internal_schedulable)(handler)
    registry.queue("internal-events", label="Event queue", schedulable=internal_schedulable)(handler)
    return registry


@pytest.fixture
async def rt(runtime):
    """The test runtime, with a registry holding one schedulable and two internal targets."""
    internal = Runtime.create(runtime.settings, clock=runtime.clock, registry=registry_with(internal_schedulable=False))
    await internal.users.create(
        "owner@acme.test", PASSWORD, "admin", tenant_id="acme", organization_id="acme-eu", password_hash=PASSWORD_HASH
    )
    yield internal
    await internal.close()


@pytest.fixture
async def web(rt):
    app = create_app(rt.settings, run_scheduler=False, runtime=rt)
    app.state.runtime = rt
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local") as client:
        assert (await login(client, "owner@acme.test")).status_code in (302, 303)
        yield client


INTERNAL = [
    {"target_type": "command", "target_command": "internal.purge"},
    {"target_type": "queue", "target_queue": "internal-events", "target_command": None},
]


@pytest.mark.parametrize("target", INTERNAL)
async def test_the_service_refuses_a_non_schedulable_target_on_every_path(rt, target):
    field = "target_command" if target["target_type"] == "command" else "target_queue"
    scheduler = rt.scheduler
    attempts = {
        "create": lambda: scheduler.create(job_definition(**target)),
        "register": lambda: scheduler.register({**job_definition(**target), "id": "module:internal"}),
        "import": lambda: scheduler.import_many([{**job_definition(**target), "id": "imported:internal"}]),
    }
    for path, attempt in attempts.items():
        with pytest.raises(ValidationError) as refused:
            await attempt()
        errors = refused.value.errors
        assert any("is not schedulable" in message for message in errors.values()), (path, errors)
    job = await scheduler.create(job_definition(target_type="command", target_command="public.report"))
    with pytest.raises(ValidationError) as refused:
        await scheduler.update(job.id, target)
    assert "is not schedulable" in refused.value.errors[field]
    assert not await scheduler.exists("module:internal") and not await scheduler.exists("imported:internal")


async def test_the_form_and_the_api_refuse_it_and_never_offer_it(web):
    form = await web.get(f"{LIST}/new")
    assert "internal.purge" not in form.text and "internal-events" not in form.text
    assert "public.report" in form.text
    hint = await web.get(f"{LIST}/target", params={"target": "command:internal.purge"})
    assert "Purge everything" not in hint.text

    fields = {
        "_csrf": csrf_from(form.text),
        "name": "Purge",
        "schedule_type": "cron",
        "schedule_value": "0 * * * *",
        "timezone": "UTC",
        "target": "command:internal.purge",
        "target_payload": "{}",
        "scope_type": "organization",
        "catch_up_policy": "latest",
        "catch_up_window_seconds": "86400",
        "overlap_policy": "allow",
        "jitter_seconds": "0",
        "max_retries": "0",
        "retry_backoff_seconds": "30",
    }
    rejected = await web.post(f"{LIST}/new", data=fields)
    assert rejected.status_code == 422 and "is not schedulable" in rejected.text

    token = {"X-CSRF-Token": fields["_csrf"]}
    targets = (await web.get(f"{API}/targets")).json()
    assert "internal.purge" not in str(targets) and "public.report" in str(targets)
    body = {
        "name": "Purge",
        "scheduleValue": "0 * * * *",
        "scopeType": "organization",
        "tenantId": "acme",
        "organizationId": "acme-eu",
        "targetType": "command",
        "targetCommand": "internal.purge",
    }
    api = await web.post(f"{API}/jobs", json=body, headers=token)
    assert api.status_code == 422 and "is not schedulable" in api.json()["errors"]["targetCommand"]
    document = (
        "version: 1\nschedules:\n  - {id: 'x:purge', name: Purge, scheduleValue: '0 * * * *', "
        "scopeType: organization, tenantId: acme, organizationId: acme-eu, targetType: queue, "
        "targetQueue: internal-events}\n"
    )
    imported = await web.post(f"{API}/import", content=document, headers={**token, "Content-Type": "application/yaml"})
    assert imported.status_code == 422 and "is not schedulable" in imported.text


async def test_a_schedule_whose_target_stopped_being_schedulable_fails_every_run_with_the_reason(runtime, clock):
    before = Runtime.create(runtime.settings, clock=clock, registry=registry_with(internal_schedulable=True))
    after = Runtime.create(runtime.settings, clock=clock, registry=registry_with(internal_schedulable=False))
    try:
        job = await before.scheduler.create(
            job_definition(target_type="command", target_command="internal.purge", schedule_value="* * * * *")
        )
        # A new release of the module declares it internal; the schedule is still there.
        manual = await after.scheduler.trigger(job.id)
        clock.set(job.next_run_at)
        await fire(LocalScheduler(after))
        runs = {r.trigger: r for r in await runs_of(after, job.id)}
        assert set(runs) == {"manual", "scheduled"} and runs["manual"].id == manual.id
        for run in runs.values():
            assert run.status == "failed"
            assert run.error_message == "command 'internal.purge' is not registered as schedulable in this process"
            assert run.result is None and run.started_at is not None
        # Changing it requires choosing a schedulable target.
        with pytest.raises(ValidationError) as refused:
            await after.scheduler.update(job.id, {"name": "still purge"})
        assert "is not schedulable" in refused.value.errors["target_command"]
    finally:
        await before.close()
        await after.close()
