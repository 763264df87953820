"""Every run the caller may see, across schedules: filters, a page, and bounded counts by status.

The ops question this answers is "what failed in the last hour, across all jobs?". A run is
authorized by its own tenant and organization (never only through its schedule), so the
filters and the counts use only the run's columns and its indexes. A page shows a run when its
schedule (live or deleted: history stays readable) is visible too, as ``find_run`` asks of one
run; the two differ only for a run left under another scope's schedule, which no current write
makes. Newest first (``created_at``, then the time-ordered id).

Counts stop at ``COUNT_CAP`` per status, like the schedule list's total: past it a count costs
more than it tells ("10,000+"). Each is a ``LIMIT``-ed subquery, all of them in one statement.
The indexes that keep this fast at ten million runs are those of migration 0008 (see
``docs/performance.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app import engine
from app.domain.access import DataAccess
from app.domain.actors import VIEW, Actor
from app.domain.errors import Forbidden, ValidationError
from app.domain.instants import accepted_instant
from app.domain.listing import COUNT_CAP, MAX_PAGE_SIZE, Page, owned_visible_to, visible_to
from app.domain.vocabulary import RUN_STATUSES
from app.persistence.models import Organization, ScheduledJob, ScheduledJobRun, Tenant

#: Deeper pages read every run before them; past this the filters are the way to narrow.
MAX_PAGE = 10_000
MOMENT_HELP = "an ISO 8601 instant with an offset (2026-12-01T09:00:00Z) or a time back from now (30m, 1h, 24h, 7d)"


@dataclass
class AllRunsQuery:
    """Runs across schedules; every filter is optional. ``since``/``until`` bound ``created_at``
    (when the slot was claimed or the run triggered): ``since`` inclusive, ``until`` exclusive."""

    status: str | None = None
    trigger: str | None = None
    #: Exactly this schedule.
    job_id: str | None = None
    #: Part of the schedule's name or id (case-insensitive).
    search: str | None = None
    tenant_id: str | None = None
    organization_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    page_size: int = 25


@dataclass(frozen=True)
class RunListing:
    """A run with what the list shows of its schedule."""

    run: ScheduledJobRun
    job_name: str | None
    job_timezone: str
    job_deleted: bool


@dataclass(frozen=True)
class StatusCount:
    status: str
    count: int
    #: False when counting stopped at COUNT_CAP.
    exact: bool


@dataclass
class RunsOverview:
    #: Items are ``RunListing``.
    page: Page
    #: One per status, in the order of a run's life, for the filters without the status.
    counts: list[StatusCount] = field(default_factory=list)


def parse_moment(text: str, now: datetime, *, name: str) -> datetime:
    """``since``/``until`` as people give them: an instant with an offset, or a duration back from
    ``now`` (``1h``: an hour ago). ValidationError naming ``name`` otherwise."""
    text = text.strip()
    if text[:1].isdigit() and text[-1:].lower() in "smhd" and "-" not in text and ":" not in text:
        try:
            return now - engine.parse_interval(text, min_seconds=1)
        except engine.ScheduleError as exc:
            if "too long" in exc.message:
                raise ValidationError({name: "goes back at most 366 days; give an instant for earlier times"}) from None
            raise ValidationError({name: f"must be {MOMENT_HELP}"}) from None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError({name: f"must be {MOMENT_HELP}"}) from None
    return aware_moment(value, name)


def aware_moment(value: datetime, name: str) -> datetime:
    """An instant from outside, in the accepted range and with an offset (a bare one is ambiguous)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError({name: "give a timezone offset, e.g. 2026-06-01T00:00:00Z"})
    try:
        return accepted_instant(value)
    except ValueError as exc:
        raise ValidationError({name: str(exc)}) from None


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        raise ValidationError({"until": "must be after 'since'"})


# ----- the statements -----------------------------------------------------------------------

Run = ScheduledJobRun


def _conditions(query: AllRunsQuery, actor: Actor, *, with_status: bool = True) -> list[sa.ColumnElement[bool]]:
    texts = (query.status, query.trigger, query.job_id, query.search, query.tenant_id, query.organization_id)
    if any(text and "\x00" in text for text in texts):
        return [sa.false()]  # stored text never holds NUL, and PostgreSQL refuses to compare with it
    conditions = [owned_visible_to(actor, Run.tenant_id, Run.organization_id)]
    if with_status and query.status:
        conditions.append(Run.status == query.status)
    for column, value in (
        (Run.trigger, query.trigger),
        (Run.job_id, query.job_id),
        (Run.tenant_id, query.tenant_id),
        (Run.organization_id, query.organization_id),
    ):
        if value:
            conditions.append(column == value)
    if query.since is not None:
        conditions.append(Run.created_at >= query.since)
    if query.until is not None:
        conditions.append(Run.created_at < query.until)
    if query.search and query.search.strip():
        pattern = sa.func.lower(sa.literal(_like_pattern(query.search.strip()), sa.String))
        matching = sa.select(ScheduledJob.id).where(
            visible_to(actor),
            sa.or_(
                sa.func.lower(ScheduledJob.name).like(pattern, escape="\\"),
                sa.func.lower(ScheduledJob.id).like(pattern, escape="\\"),
            ),
        )
        conditions.append(Run.job_id.in_(matching))
    return conditions


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_statement(query: AllRunsQuery, actor: Actor) -> sa.Select[Any]:
    """One page of (run, schedule id, name, timezone, deleted_at), newest first; the schedule's
    columns are NULL when the actor may not see it.

    The page's ids are found first (a "deferred join"): walking the order up to a deep page's
    offset reads index entries, and only the page's rows are read whole.
    """
    size = max(1, min(query.page_size, MAX_PAGE_SIZE))
    offset = (min(max(1, query.page), MAX_PAGE) - 1) * size
    ids = (
        sa.select(Run.id, Run.created_at)
        .where(*_conditions(query, actor))
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(size)
        .offset(offset)
        .subquery("page")
    )
    return (
        sa.select(Run, ScheduledJob.id, ScheduledJob.name, ScheduledJob.timezone, ScheduledJob.deleted_at)
        .join(ids, ids.c.id == Run.id)
        .outerjoin(ScheduledJob, sa.and_(ScheduledJob.id == Run.job_id, visible_to(actor)))
        .order_by(ids.c.created_at.desc(), ids.c.id.desc())
    )


def counts_statement(query: AllRunsQuery, actor: Actor) -> sa.Select[Any]:
    """One row: the (capped) number of runs of each status, for the filters but the status."""
    conditions = _conditions(query, actor, with_status=False)

    def capped(status: str) -> sa.ScalarSelect[int]:
        found = (
            sa.select(sa.literal(1))
            .select_from(Run)
            .where(*conditions, Run.status == status)
            .limit(COUNT_CAP + 1)
            .subquery()
        )
        return sa.select(sa.func.count()).select_from(found).scalar_subquery()

    return sa.select(*(capped(status).label(status) for status in RUN_STATUSES))


# ----- reading ------------------------------------------------------------------------------


async def browse_runs(data: DataAccess, query: AllRunsQuery, actor: Actor, *, counts: bool = True) -> RunsOverview:
    """The runs ``actor`` may see that match ``query``: a page, and (``counts``) counts by status."""
    if not actor.can(VIEW):
        raise Forbidden(f"you need the '{VIEW}' permission")
    check_range(query.since, query.until)
    size = max(1, min(query.page_size, MAX_PAGE_SIZE))
    async with data.sessions() as session:
        rows = (await session.execute(page_statement(query, actor))).all()
        by_status: list[StatusCount] = []
        if counts:
            found = (await session.execute(counts_statement(query, actor))).one()
            by_status = [StatusCount(s, min(n, COUNT_CAP), n <= COUNT_CAP) for s, n in zip(RUN_STATUSES, found)]
    items = [
        RunListing(run, name, timezone or "UTC", deleted_at is not None or job_id is None)
        for run, job_id, name, timezone, deleted_at in rows
        # A run is authorized by its own scope; a run left under a schedule the actor cannot see
        # (another scope's, as an id takeover once allowed) is not shown, as GET /runs/{id} hides it.
        if job_id is not None or actor.is_superadmin
    ]
    page = max(1, min(query.page, MAX_PAGE))
    if counts:
        chosen = [c for c in by_status if not query.status or c.status == query.status]
        total, exact = sum(c.count for c in chosen), all(c.exact for c in chosen)
    else:  # what the page itself shows: at least the runs before it and on it
        total, exact = (page - 1) * size + len(items), len(items) < size
    return RunsOverview(Page(items, total, page, size, total_exact=exact), by_status)


@dataclass(frozen=True)
class ScopeChoices:
    """The tenants and organizations a caller may narrow the runs to (empty: nothing to choose)."""

    tenants: list[str]
    organizations: list[str]


async def scope_choices(data: DataAccess, actor: Actor, tenant_id: str | None = None, limit: int = 500) -> ScopeChoices:
    """Superadmins choose among tenants (and, once one is chosen, its organizations); a user of a
    whole tenant among its organizations; a user of one organization has nothing to choose."""
    tenant = tenant_id if actor.is_superadmin else (actor.tenant_id if actor.organization_id is None else None)
    async with data.sessions() as session:
        tenants = (
            list(await session.scalars(sa.select(Tenant.id).order_by(Tenant.id).limit(limit)))
            if actor.is_superadmin
            else []
        )
        organizations = (
            list(
                await session.scalars(
                    sa.select(Organization.id)
                    .where(Organization.tenant_id == tenant)
                    .order_by(Organization.id)
                    .limit(limit)
                )
            )
            if tenant
            else []
        )
    return ScopeChoices(tenants, organizations)
