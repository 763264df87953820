"""Prometheus metrics, computed from the database at scrape time.

Every number comes from the tables, not from counters in one process, so it is the same
whichever process answers the scrape and it survives restarts. The queries are bounded: run
metrics look at a recent window (``WINDOW``) through the ``created_at`` index; schedule and
in-flight counts use the partial indexes of the due-slot and active-run queries.

Windowed numbers are gauges (they go down as runs leave the window); the two histograms are
gauge histograms: read them with ``histogram_quantile(0.95, <name>_bucket)``, not ``rate()``.
See ``docs/api.md`` for the list.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.heartbeats import live_counts
from app.domain.services import Services
from app.domain.vocabulary import ACTIVE, RunStatus, Trigger
from app.persistence.models import ScheduledJob, ScheduledJobRun

WINDOW = timedelta(hours=1)
#: Runs are found through ``created_at`` (indexed); a run that started or finished in the window
#: was created at most this long before it (jitter, queueing, a long run).
LOOKBACK = timedelta(hours=2)
LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
PREFIX = "mercato_scheduler"


async def collect(runtime: Services) -> list[Metric]:
    """All metric families, read in one short read-only session."""
    now = runtime.clock()
    dialect = runtime.engine.dialect.name
    async with runtime.sessions() as session:
        families = [
            await _runs_by_status(session, now),
            await _missed_slots(session, now),
            await _in_flight(session),
            *await _due_slots(session, now),
            await _schedules_by_state(session),
            await _processes(session, now, runtime.settings.scheduler_heartbeat_seconds),
            await _histogram(
                session,
                f"{PREFIX}_firing_lag_seconds",
                "Seconds from a slot to the start of its run (started_at - scheduled_for; includes jitter), "
                "for scheduled and catch-up runs started in the last hour.",
                _seconds(ScheduledJobRun.started_at, ScheduledJobRun.scheduled_for, dialect),
                LAG_BUCKETS,
                ScheduledJobRun.created_at >= now - LOOKBACK,
                ScheduledJobRun.started_at >= now - WINDOW,
                ScheduledJobRun.trigger.in_((Trigger.SCHEDULED, Trigger.CATCH_UP)),
            ),
            await _histogram(
                session,
                f"{PREFIX}_run_duration_seconds",
                "How long runs that finished in the last hour took (succeeded, failed or timed out).",
                ScheduledJobRun.duration_ms / 1000.0,
                DURATION_BUCKETS,
                ScheduledJobRun.created_at >= now - LOOKBACK,
                ScheduledJobRun.finished_at >= now - WINDOW,
                ScheduledJobRun.status.in_((RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT)),
                ScheduledJobRun.duration_ms.is_not(None),
            ),
        ]
    return families


def _seconds(
    later: sa.SQLColumnExpression[datetime | None], earlier: sa.SQLColumnExpression[datetime], dialect: str
) -> sa.ColumnElement[Any]:
    """Seconds from ``earlier`` to ``later``: a numeric on PostgreSQL, a float on SQLite."""
    if dialect == "postgresql":
        return sa.func.extract("epoch", later - earlier)
    # SQLite keeps UTC timestamps as text; julianday() reads them as fractional days.
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86_400.0


async def _runs_by_status(session: AsyncSession, now: datetime) -> Metric:
    family = GaugeMetricFamily(
        f"{PREFIX}_runs_last_hour",
        "Runs created in the last hour, by status and trigger.",
        labels=["status", "trigger"],
    )
    rows = await session.execute(
        sa.select(ScheduledJobRun.status, ScheduledJobRun.trigger, sa.func.count())
        .where(ScheduledJobRun.created_at >= now - WINDOW)
        .group_by(ScheduledJobRun.status, ScheduledJobRun.trigger)
        .order_by(ScheduledJobRun.status, ScheduledJobRun.trigger)
    )
    for status, trigger, count in rows:
        family.add_metric([status, trigger], count)
    return family


async def _missed_slots(session: AsyncSession, now: datetime) -> Metric:
    missed = await session.scalar(
        sa.select(sa.func.count())
        .select_from(ScheduledJobRun)
        .where(ScheduledJobRun.created_at >= now - WINDOW, ScheduledJobRun.status == RunStatus.MISSED)
    )
    return GaugeMetricFamily(
        f"{PREFIX}_missed_slots_last_hour",
        "Slots recorded as missed in the last hour (the scheduler was not running when they were due; "
        "a long outage is summarised in one row).",
        value=missed or 0,
    )


async def _in_flight(session: AsyncSession) -> Metric:
    family = GaugeMetricFamily(f"{PREFIX}_runs_in_flight", "Runs queued or running right now.", labels=["status"])
    rows = dict(
        (
            await session.execute(
                sa.select(ScheduledJobRun.status, sa.func.count())
                .where(ScheduledJobRun.status.in_(ACTIVE))
                .group_by(ScheduledJobRun.status)
            )
        )
        .tuples()
        .all()
    )
    for status in sorted(ACTIVE):
        family.add_metric([status], rows.get(status, 0))
    return family


async def _due_slots(session: AsyncSession, now: datetime) -> list[Metric]:
    due = sa.and_(ScheduledJob.is_enabled, ScheduledJob.deleted_at.is_(None), ScheduledJob.next_run_at <= now)
    count, oldest = (
        await session.execute(sa.select(sa.func.count(), sa.func.min(ScheduledJob.next_run_at)).where(due))
    ).one()
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return [
        GaugeMetricFamily(
            f"{PREFIX}_due_unclaimed_slots",
            "Enabled schedules whose next slot is due but not yet claimed by a scheduler. "
            "Staying above zero means no scheduler is firing.",
            value=count or 0,
        ),
        GaugeMetricFamily(
            f"{PREFIX}_oldest_unclaimed_slot_age_seconds",
            "How long the oldest due-but-unclaimed slot has been waiting (0 when none).",
            value=age,
        ),
    ]


async def _schedules_by_state(session: AsyncSession) -> Metric:
    family = GaugeMetricFamily(
        f"{PREFIX}_schedules",
        "Live (not deleted) schedules by state (enabled, disabled, finished: enabled but with no next "
        "slot, after its end or its maximum number of runs) and scope.",
        labels=["state", "scope"],
    )
    state = sa.case(
        (sa.not_(ScheduledJob.is_enabled), "disabled"),
        (ScheduledJob.next_run_at.is_(None), "finished"),
        else_="enabled",
    )
    rows = await session.execute(
        sa.select(state, ScheduledJob.scope_type, sa.func.count())
        .where(ScheduledJob.deleted_at.is_(None))
        .group_by(state, ScheduledJob.scope_type)
    )
    counts = {(s, scope): n for s, scope, n in rows}
    for s in ("enabled", "disabled", "finished"):
        for scope in ("system", "tenant", "organization"):
            family.add_metric([s, scope], counts.get((s, scope), 0))
    return family


async def _processes(session: AsyncSession, now: datetime, heartbeat_seconds: int) -> Metric:
    family = GaugeMetricFamily(
        f"{PREFIX}_processes",
        "Live processes by kind (heard from within three heartbeats): embedded (the poller of mercato serve), "
        "poller (mercato scheduler start), async-scheduler (mercato worker scheduler), worker (mercato worker start).",
        labels=["kind"],
    )
    for kind, count in (await live_counts(session, now, heartbeat_seconds)).items():
        family.add_metric([kind.value], count)
    return family


async def _histogram(
    session: AsyncSession,
    name: str,
    doc: str,
    value: sa.ColumnElement[Any],
    buckets: Iterable[float],
    *where: sa.ColumnElement[bool],
) -> Metric:
    buckets = tuple(buckets)
    columns = [sa.func.count().filter(value <= bound) for bound in buckets]
    row = (
        await session.execute(
            sa.select(*columns, sa.func.count(), sa.func.coalesce(sa.func.sum(value), 0.0))
            .select_from(ScheduledJobRun)
            .where(*where)
        )
    ).one()
    *counts, total, total_sum = row
    points = [(_bound(b), c) for b, c in zip(buckets, counts)] + [("+Inf", total)]
    return GaugeHistogramMetricFamily(name, doc, buckets=points, gsum_value=float(total_sum))


def _bound(value: float) -> str:
    return str(float(value))
