"""The schedule list's order and filter choices, as the indexes serve them (SQLite and PostgreSQL)."""

from __future__ import annotations

from app.domain.actors import ALL_FEATURES, Actor
from app.domain.listing import JobQuery

ORG_ADMIN = Actor(id="u1", label="ops@t1", tenant_id="t1", organization_id="org-1", features=ALL_FEATURES)


def job(name: str, **overrides):
    data = {"name": name, "scope_type": "organization", "tenant_id": "t1", "organization_id": "org-1",
            "schedule_type": "cron", "schedule_value": "0 9 * * *", "target_type": "command",
            "target_command": "demo.echo"}
    data.update(overrides)
    return data


async def names(runtime, **query) -> list[str]:
    pages, page = [], 1
    while True:
        result = await runtime.scheduler.list(JobQuery(page=page, page_size=2, **query))
        pages += [j.name for j in result.items]
        if len(result.items) < 2:
            return pages
        page += 1


async def test_it_sorts_by_next_run_with_schedules_that_never_run_last_in_both_directions(runtime):
    for name, cron in (("at nine", "0 9 * * *"), ("at ten", "0 10 * * *"), ("at eleven", "0 11 * * *")):
        await runtime.scheduler.create(job(name, schedule_value=cron))
    for name in ("paused a", "paused b"):
        await runtime.scheduler.create(job(name, is_enabled=False))
    ascending = await names(runtime, sort="nextRunAt")
    descending = await names(runtime, sort="nextRunAt", order="desc")
    assert ascending[:3] == ["at nine", "at ten", "at eleven"]
    assert descending[:3] == ["at eleven", "at ten", "at nine"]
    assert sorted(ascending[3:]) == sorted(descending[3:]) == ["paused a", "paused b"]


async def test_it_breaks_ties_by_id_in_the_sort_direction(runtime):
    for i in range(3):
        await runtime.scheduler.create({**job("same name"), "id": f"tie-{i}"})
    ascending = await runtime.scheduler.list(JobQuery(sort="name"))
    descending = await runtime.scheduler.list(JobQuery(sort="name", order="desc"))
    assert [j.id for j in ascending.items] == ["tie-0", "tie-1", "tie-2"]
    assert [j.id for j in descending.items] == ["tie-2", "tie-1", "tie-0"]


async def test_it_offers_each_visible_source_module_once_in_order(runtime):
    for i, module in enumerate(("orders", "billing", "orders", "catalog")):
        await runtime.scheduler.register({**job(f"{module} {i}"), "id": f"{module}:job-{i}", "source_module": module})
    await runtime.scheduler.register({**job("elsewhere", tenant_id="t2", organization_id="org-9"),
                                      "id": "search:other-tenant", "source_module": "search"})
    await runtime.scheduler.unregister("catalog:job-3")
    assert await runtime.scheduler.source_modules() == ["billing", "orders", "search"]
    assert await runtime.scheduler.source_modules(ORG_ADMIN) == ["billing", "orders"]
