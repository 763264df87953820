"""The schedule list's order and filter choices, as the indexes serve them (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa

from app.domain import listing, service
from app.domain.actors import ALL_FEATURES, Actor
from app.domain.listing import JobQuery
from app.persistence.models import ScheduledJob

ORG_ADMIN = Actor(id="u1", label="ops@t1", tenant_id="t1", organization_id="org-1", features=ALL_FEATURES)


def job(name: str, **overrides):
    data = {
        "name": name,
        "scope_type": "organization",
        "tenant_id": "t1",
        "organization_id": "org-1",
        "schedule_type": "cron",
        "schedule_value": "0 9 * * *",
        "target_type": "command",
        "target_command": "demo.echo",
    }
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
    await runtime.scheduler.register(
        {
            **job("elsewhere", tenant_id="t2", organization_id="org-9"),
            "id": "search:other-tenant",
            "source_module": "search",
        }
    )
    await runtime.scheduler.unregister("catalog:job-3")
    assert await runtime.scheduler.source_modules() == ["billing", "orders", "search"]
    assert await runtime.scheduler.source_modules(ORG_ADMIN) == ["billing", "orders"]


# ----- every page of every sort, against the same list sorted in Python ------------------------

TENANT_ADMIN = Actor(id="u2", label="ops@t1-all", tenant_id="t1", features=ALL_FEATURES)
SUPERADMIN = Actor(id="u3", label="root", is_superadmin=True, features=ALL_FEATURES)
NAMES = ("alpha", "bravo", "charlie", "delta")  # few names: many ties, broken by id
SCOPES = (  # (scope, tenant, organization)
    ("organization", "t1", "org-1"),
    ("organization", "t1", "org-2"),
    ("tenant", "t1", None),
    ("organization", "t2", "org-9"),
    ("tenant", "t2", None),
    ("system", None, None),
)
SORT_COLUMNS = {"name": "name", "nextRunAt": "next_run_at", "lastRunAt": "last_run_at"}


async def _varied_schedules(runtime, clock) -> list[dict]:
    """40 schedules of every scope; names, slots and last runs with ties and NULLs; some deleted.

    The columns the list sorts and filters by are written directly, as the firing path would.
    """
    rng = random.Random(11)
    instants = [clock() - timedelta(hours=h) for h in (1, 2, 2, 3, 5)]  # 2 h twice: ties
    rows = []
    for i in range(40):
        scope, tenant, org = SCOPES[i % len(SCOPES)]
        job_id = f"j{i:02d}"
        await runtime.scheduler.create(
            {
                **job(rng.choice(NAMES), scope_type=scope, tenant_id=tenant, organization_id=org),
                "id": job_id,
                "description": "nightly export" if i % 3 == 0 else "report",
            }
        )
        status = rng.choice(("succeeded", "failed", "timed_out", None))
        row = {
            "id": job_id,
            "last_status": status,
            "last_run_at": rng.choice(instants) if status else None,
            "next_run_at": rng.choice(instants[:3]) + timedelta(days=1) if i % 4 else None,
            "deleted_at": clock() if i % 9 == 4 else None,
        }
        async with runtime.engine.begin() as conn:
            await conn.execute(
                sa.update(ScheduledJob)
                .where(ScheduledJob.id == job_id)
                .values({k: v for k, v in row.items() if k != "id"})
            )
        async with runtime.sessions() as session:
            stored = await session.get(ScheduledJob, job_id)
            rows.append(
                {
                    "id": job_id,
                    "name": stored.name,
                    "description": stored.description,
                    "scope": scope,
                    "tenant": tenant,
                    "org": org,
                    **row,
                }
            )
    return rows


def _expected(rows, actor, sort: str, order: str, last_status=None, search=None) -> list[str]:
    """What the list must show, in order: NULLs last in both directions, ties by id in the sort's direction."""
    column = SORT_COLUMNS[sort]
    shown = [
        r
        for r in rows
        if r["deleted_at"] is None
        and actor.can_see(r["scope"], r["tenant"], r["org"])
        and (last_status is None or r["last_status"] == last_status)
        and (search is None or any(search in r[c].lower() for c in ("id", "name", "description")))
    ]
    with_value = sorted(
        (r for r in shown if r[column] is not None), key=lambda r: (r[column], r["id"]), reverse=order == "desc"
    )
    without = sorted((r for r in shown if r[column] is None), key=lambda r: r["id"], reverse=order == "desc")
    return [r["id"] for r in with_value + without]


async def _all_pages(runtime, actor, size: int, **query) -> tuple[list[str], set[int]]:
    ids, totals, page = [], set(), 1
    while True:
        result = await runtime.scheduler.list(JobQuery(page=page, page_size=size, **query), actor)
        ids += [j.id for j in result.items]
        totals.add(result.total)
        if len(result.items) < size:
            return ids, totals
        page += 1


async def test_every_page_of_every_sort_matches_the_rows_sorted_in_python(runtime, clock):
    rows = await _varied_schedules(runtime, clock)
    for actor in (SUPERADMIN, ORG_ADMIN, TENANT_ADMIN):
        for sort in SORT_COLUMNS:
            for order in ("asc", "desc"):
                for filters in ({}, {"last_status": "failed"}, {"search": "export"}):
                    expected = _expected(rows, actor, sort, order, **filters)
                    for size in (3, 7):
                        ids, totals = await _all_pages(runtime, actor, size, sort=sort, order=order, **filters)
                        assert (ids, totals) == (expected, {len(expected)}), (actor.label, sort, order, filters, size)
    beyond = await runtime.scheduler.list(JobQuery(page=50, page_size=3, last_status="failed"), ORG_ADMIN)
    assert (
        beyond.items == [] and beyond.total == len(_expected(rows, ORG_ADMIN, "name", "asc", last_status="failed")) > 0
    )


async def test_pages_past_the_count_cap_keep_the_same_order(runtime, clock, monkeypatch):
    # Past the cap a search's page comes from a walk of the sort index, not from its matches.
    rows = await _varied_schedules(runtime, clock)
    monkeypatch.setattr(listing, "COUNT_CAP", 4)
    monkeypatch.setattr(service, "COUNT_CAP", 4)
    for actor in (SUPERADMIN, ORG_ADMIN):
        for sort in SORT_COLUMNS:
            for order in ("asc", "desc"):
                for filters in ({}, {"search": "export"}, {"last_status": "failed"}):
                    expected = _expected(rows, actor, sort, order, **filters)
                    ids, totals = await _all_pages(runtime, actor, 3, sort=sort, order=order, **filters)
                    assert ids == expected and totals <= {4, len(expected)}, (actor.label, sort, order, filters)


async def test_search_finds_what_ilike_finds_whatever_the_case_and_characters(runtime):
    # The search compares lower(column) LIKE lower(text); it used to be lower(column) ILIKE text,
    # which lowers both sides itself. The same schedules, for letters whose case is not ASCII's.
    names = [
        "Größe Export",
        "İSTANBUL sync",
        "ΣΊΣΥΦΟΣ backup",
        "ǅemal feed",
        "STRASSE",
        "Café au lait",
        "100% done",
        "under_score",
        "back\\slash",
        "ﬁle ligature",
    ]
    for i, name in enumerate(names):
        await runtime.scheduler.create({**job(name), "id": f"s{i:02d}", "description": name.swapcase()})
    old = lambda text: sa.or_(
        *(
            sa.func.lower(column).ilike(listing._like_pattern(text), escape="\\")
            for column in (ScheduledJob.name, ScheduledJob.description, ScheduledJob.id)
        )
    )
    for text in (
        "größe",
        "GRÖSSE",
        "istanbul",
        "İstanbul",
        "i̇stanbul",
        "σίσυφος",
        "ΣΊΣ",
        "ǆ",
        "ǅ",
        "Ǆ",
        "café",
        "CAFÉ",
        "%",
        "_",
        "\\",
        "0% d",
        "r_s",
        "FILE",
        "ﬁ",
        "S0",
    ):
        async with runtime.sessions() as session:
            expected = list(
                await session.scalars(
                    sa.select(ScheduledJob.id)
                    .where(ScheduledJob.deleted_at.is_(None), old(text))
                    .order_by(ScheduledJob.id)
                )
            )
        found = await runtime.scheduler.list(JobQuery(search=text, sort="name", page_size=100))
        assert sorted(j.id for j in found.items) == expected and found.total == len(expected), text
