"""Listing schedules: filters, search, sort and a bounded count, always within the caller's scope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute

from app.domain.actors import Actor
from app.persistence.models import ScheduledJob, ScheduledJobRun

#: A schedule column a list can be sorted by.
SortColumn = InstrumentedAttribute[Any]

SORTS: dict[str, SortColumn] = {
    "name": ScheduledJob.name,
    "nextRunAt": ScheduledJob.next_run_at,
    "lastRunAt": ScheduledJob.last_run_at,
    "createdAt": ScheduledJob.created_at,
    "updatedAt": ScheduledJob.updated_at,
}
#: Counting past this many rows costs more than it tells; the UI shows "10,000+".
COUNT_CAP = 10_000
MAX_PAGE_SIZE = 100


@dataclass
class JobQuery:
    search: str | None = None
    scope_type: str | None = None
    tenant_id: str | None = None
    is_enabled: bool | None = None
    schedule_type: str | None = None
    target_type: str | None = None
    source_type: str | None = None
    source_module: str | None = None
    last_status: str | None = None
    sort: str = "name"
    order: str = "asc"
    page: int = 1
    page_size: int = 25


#: Every status a run can have, in the order of its life.


@dataclass
class RunQuery:
    """One schedule's run history: newest first, optionally one status and/or one trigger."""

    status: str | None = None
    trigger: str | None = None
    #: Only runs whose slot (``scheduled_for``) is at or after ``since`` and before ``until``.
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    page_size: int = 20


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    page_size: int
    #: False when the count stopped at COUNT_CAP.
    total_exact: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def visible_to(actor: Actor) -> sa.ColumnElement[bool]:
    """SQL form of ``Actor.can_see``."""
    if actor.is_superadmin:
        return sa.true()
    if actor.tenant_id is None:
        return sa.false()
    in_tenant = sa.and_(ScheduledJob.tenant_id == actor.tenant_id, ScheduledJob.scope_type != "system")
    if actor.organization_id is None:
        return in_tenant
    return sa.and_(
        in_tenant,
        sa.or_(ScheduledJob.scope_type == "tenant", ScheduledJob.organization_id == actor.organization_id),
    )


def owned_visible_to(
    actor: Actor, tenant: sa.SQLColumnExpression[str | None], organization: sa.SQLColumnExpression[str | None]
) -> sa.ColumnElement[bool]:
    """SQL form of ``Actor.can_see_owned``: rows authorized by their own scope ids (runs, audit
    entries), never only through their schedule."""
    if actor.is_superadmin:
        return sa.true()
    if actor.tenant_id is None:
        return sa.false()
    if actor.organization_id is None:
        return tenant == actor.tenant_id
    return sa.and_(tenant == actor.tenant_id, sa.or_(organization.is_(None), organization == actor.organization_id))


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def job_conditions(query: JobQuery, actor: Actor) -> list[sa.ColumnElement[bool]]:
    conditions = [ScheduledJob.deleted_at.is_(None), visible_to(actor)]
    texts = (
        query.search,
        query.scope_type,
        query.tenant_id,
        query.schedule_type,
        query.target_type,
        query.source_type,
        query.source_module,
        query.last_status,
    )
    if any(text and "\x00" in text for text in texts):
        # Stored text never holds NUL, and PostgreSQL refuses to even compare with it.
        return [sa.false()]
    if query.search:
        # lower(column) LIKE lower(pattern): what ILIKE compares (it lowers both sides itself),
        # on the expression the trigram indexes are on, without ILIKE lowering every value
        # again: at a million schedules the recheck and the filter cost half as much.
        pattern = sa.func.lower(sa.literal(_like_pattern(query.search.strip()), sa.String))
        conditions.append(
            sa.or_(
                *(
                    sa.func.lower(column).like(pattern, escape="\\")
                    for column in (ScheduledJob.name, ScheduledJob.description, ScheduledJob.id)
                )
            )
        )
    for column, value in (
        (ScheduledJob.scope_type, query.scope_type),
        (ScheduledJob.tenant_id, query.tenant_id),
        (ScheduledJob.schedule_type, query.schedule_type),
        (ScheduledJob.target_type, query.target_type),
        (ScheduledJob.source_type, query.source_type),
        (ScheduledJob.source_module, query.source_module),
        (ScheduledJob.last_status, query.last_status),
    ):
        if value:
            conditions.append(column == value)
    if query.is_enabled is not None:
        conditions.append(ScheduledJob.is_enabled.is_(query.is_enabled))
    return conditions


def list_statement(query: JobQuery, actor: Actor) -> sa.Select[tuple[ScheduledJob]]:
    """The rows of one page, found by walking the sort order (for more than COUNT_CAP matches).

    The page is found as ids first (a "deferred join"): the walk in sort order up to the
    page's offset reads only the id and the sort key, which an index can give without
    visiting the table (page 4,000 of the names: 100,000 index entries instead of 100,000
    rows), and only the page's rows are read whole.
    """
    conditions = job_conditions(query, actor)
    column = SORTS.get(query.sort, ScheduledJob.name)
    descending = query.order == "desc"
    size, offset = _window(query)
    if descending and column.nullable:
        page = _nulls_last_descending(conditions, column, size, offset)
    else:
        page = (
            sa.select(ScheduledJob.id)
            .where(*conditions)
            .order_by(*_order(ScheduledJob, column, query))
            .limit(size)
            .offset(offset)
            .subquery("page")
        )
    return (
        sa.select(ScheduledJob).join(page, page.c.id == ScheduledJob.id).order_by(*_order(ScheduledJob, column, query))
    )


def matches_statement(query: JobQuery, actor: Actor) -> sa.Select[tuple[int, ScheduledJob]]:
    """The (capped) number of matches and the page sorted from them: rows of (total, schedule),
    one row with no schedule when the page is empty.

    The matches (at most COUNT_CAP + 1: what counting them reads anyway) are materialized,
    counted and sorted, so a page of at most COUNT_CAP matches costs no more than its count.
    Walking a sorted index until a page of matches turns up instead reads most of the table
    when the matches are few or sit far along it (a search's matches, 1,000 system schedules
    among a million), and the planner cannot tell. If the count exceeds COUNT_CAP the page is
    not complete: use ``list_statement`` (the matches are then many, and the walk finds a page
    of them quickly).
    """
    column = SORTS.get(query.sort, ScheduledJob.name)
    size, offset = _window(query)
    # Only the id and the sort key are kept of each match; the page's rows are read afterwards.
    matches = (
        sa.select(ScheduledJob.id, column)
        .where(*job_conditions(query, actor))
        .limit(COUNT_CAP + 1)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    counted = sa.select(sa.func.count().label("total")).select_from(matches).subquery("counted")
    page = (
        sa.select(matches.c.id).order_by(*_order(matches.c, column, query)).limit(size).offset(offset).subquery("page")
    )
    return (
        sa.select(counted.c.total, ScheduledJob)
        .select_from(counted)
        .outerjoin(page, sa.true())
        .outerjoin(ScheduledJob, ScheduledJob.id == page.c.id)
        .order_by(*_order(ScheduledJob, column, query))
    )


def _window(query: JobQuery) -> tuple[int, int]:
    size = max(1, min(query.page_size, MAX_PAGE_SIZE))
    return size, (max(1, query.page) - 1) * size


def _order(
    entity: type[ScheduledJob] | sa.ColumnCollection[str, Any], column: SortColumn, query: JobQuery
) -> tuple[sa.UnaryExpression[Any], sa.UnaryExpression[Any]]:
    """ORDER BY the sort column (NULLs last) and then the id, both in the sort's direction, so
    that one index (column, id) serves both directions. ``entity`` is the model or the columns
    of a subquery of it."""
    key, tiebreak = getattr(entity, column.key), entity.id
    if query.order == "desc":
        key, tiebreak = key.desc(), tiebreak.desc()
    else:
        key, tiebreak = key.asc(), tiebreak.asc()
    return (key.nulls_last() if column.nullable else key), tiebreak


def _nulls_last_descending(
    conditions: Sequence[sa.ColumnElement[bool]], column: SortColumn, size: int, offset: int
) -> sa.Subquery:
    """The ids of a page in descending order of a column that may be NULL, with the NULLs last.

    Read backwards, an index on (column, id) gives the NULLs first on PostgreSQL; so the rows
    with a value and the rows without are read apart, each in index order and at most as many
    as the page needs, and merged.
    """
    window = offset + size
    with_value = (
        sa.select(ScheduledJob.id, column.label("key"))
        .where(*conditions, column.is_not(None))
        .order_by(column.desc(), ScheduledJob.id.desc())
        .limit(window)
    )
    without = (
        sa.select(ScheduledJob.id, column.label("key"))
        .where(*conditions, column.is_(None))
        .order_by(ScheduledJob.id.desc())
        .limit(window)
    )
    # Each part as a subquery of its own: SQLite allows no ORDER BY or LIMIT in a bare UNION member.
    both = sa.union_all(sa.select(with_value.subquery()), sa.select(without.subquery())).subquery()
    return (
        sa.select(both.c.id)
        .order_by(both.c.key.desc().nulls_last(), both.c.id.desc())
        .limit(size)
        .offset(offset)
        .subquery("page")
    )


def source_modules_statement(actor: Actor, limit: int = 200) -> sa.Select[tuple[str]]:
    """The distinct source modules of the schedules ``actor`` sees, in order.

    For a superadmin, a loose index scan (a recursive query taking the next module after the
    last one from ``ix_scheduled_jobs_source``): a dozen index probes instead of reading every
    schedule. Anyone else sees one tenant's schedules, found through the scope index; there
    the probes would wade through other tenants' rows, so their modules are read directly.
    """
    live = [ScheduledJob.deleted_at.is_(None), visible_to(actor)]
    if not actor.is_superadmin:
        # Materialized, so PostgreSQL finds the tenant's rows first (scope index) rather than
        # walking the module index through every tenant's (1.3 s at a million schedules).
        visible = (
            sa.select(ScheduledJob.source_module)
            .where(*live, ScheduledJob.source_module.is_not(None))
            .cte("visible_modules")
            .prefix_with("MATERIALIZED")
        )
        return sa.select(visible.c.source_module).distinct().order_by(visible.c.source_module).limit(limit)
    first = sa.select(sa.func.min(ScheduledJob.source_module)).where(*live, ScheduledJob.source_module.is_not(None))
    modules = first.cte("modules", recursive=True)
    following = (
        sa.select(sa.func.min(ScheduledJob.source_module))
        .where(*live, ScheduledJob.source_module > modules.c[0])
        .scalar_subquery()
    )
    modules = modules.union_all(sa.select(following).where(modules.c[0].is_not(None)))
    return sa.select(modules.c[0]).where(modules.c[0].is_not(None)).limit(limit)


def runs_statement(
    job_id: str, query: RunQuery, actor: Actor
) -> tuple[sa.Select[tuple[ScheduledJobRun]], sa.Select[tuple[int]]]:
    """Rows and bounded count of a schedule's runs (served by ``ix_scheduled_job_runs_history``)."""
    conditions = [
        ScheduledJobRun.job_id == job_id,
        owned_visible_to(actor, ScheduledJobRun.tenant_id, ScheduledJobRun.organization_id),
    ]
    if query.status:
        conditions.append(ScheduledJobRun.status == query.status)
    if query.trigger:
        conditions.append(ScheduledJobRun.trigger == query.trigger)
    if query.since is not None:
        conditions.append(ScheduledJobRun.scheduled_for >= query.since)
    if query.until is not None:
        conditions.append(ScheduledJobRun.scheduled_for < query.until)
    size = max(1, min(query.page_size, MAX_PAGE_SIZE))
    rows = (
        sa.select(ScheduledJobRun)
        .where(*conditions)
        .order_by(ScheduledJobRun.created_at.desc(), ScheduledJobRun.id.desc())
        .limit(size)
        .offset((max(1, query.page) - 1) * size)
    )
    capped = sa.select(sa.literal(1)).select_from(ScheduledJobRun).where(*conditions).limit(COUNT_CAP + 1).subquery()
    return rows, sa.select(sa.func.count()).select_from(capped)
