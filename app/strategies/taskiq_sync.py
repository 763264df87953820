"""Keeping Redis in step with the database, and getting queued runs onto the streams.

- ``RedisSync`` (added to ``runtime.hooks`` when ``QUEUE_STRATEGY=async``) writes a schedule's
  Redis entry the moment a change commits, and sends a manual run to the workers at once.
- ``reconcile_all`` rebuilds Redis from the database: adds missing entries, repairs changed ones,
  removes orphans. ``mercato scheduler start`` runs it once; every scheduler process runs it at
  start and every ``SCHEDULER_RECONCILE_INTERVAL_SECONDS``, so a flushed Redis heals by itself.
- ``send_due_runs`` sends queued runs whose time has come (retries after their backoff, jittered
  runs, manual runs) and sends again what Redis lost. A run row records when and where it was
  sent (``enqueued_at``, ``queue_job_id``): ``sending:<stream>`` from the moment it is taken for
  sending, ``<stream>`` once its message is on the stream (``confirm_sent``). A run still marked
  ``sending:`` after ``SEND_GRACE`` lost its sender (killed between the claim and the XADD) and
  is sent again. When the broker's Redis has lost its data (a marker key is gone: FLUSHALL, a
  restart without persistence) every run sent before is sent again; a run waiting longer than
  ``RESEND_AFTER`` is sent again in any case. Sending twice is harmless: a run starts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import AsyncBroker

from app.domain.clock import Clock
from app.domain.execution import LEASE
from app.domain.outcomes import settle_lost_runs
from app.domain.services import Services
from app.domain.vocabulary import RunStatus
from app.persistence.models import ScheduledJob, ScheduledJobRun
from app.settings import Settings
from app.strategies.taskiq_broker import COMMAND_STREAM, MercatoStreamBroker, build_broker, send_run, stream_for
from app.strategies.taskiq_store import ScheduleStore, entry_for

log = logging.getLogger("mercato.sync")

#: Safety net: a run sent this long ago and still queued is sent again.
RESEND_AFTER = timedelta(minutes=10)
#: ``queue_job_id`` of a run taken for sending whose message is not on the stream yet.
SENDING = "sending:"
#: A send not confirmed this long after it was taken lost its sender: the run is sent again.
SEND_GRACE = timedelta(seconds=10)
#: Present while the broker's Redis keeps its data; gone after a flush or an empty restart.
MARKER = "mercato:broker-alive"
SEND_EVERY = 1.0  # seconds between looks for queued runs that became due
SEND_BATCH = 500


# ----- queued runs -> streams ----------------------------------------------------------------


@dataclass(frozen=True)
class Sendable:
    run_id: str
    job_id: str
    slot: datetime
    stream: str


async def take_sendable(
    session: AsyncSession,
    now: datetime,
    *,
    run_ids: Sequence[str] | None = None,
    lost_before: datetime | None = None,
    limit: int = SEND_BATCH,
) -> list[Sendable]:
    """Mark queued runs whose time has come as being sent (in the caller's transaction) and
    return them; the caller sends them and then calls ``confirm_sent``.

    Runs sent before ``lost_before`` are taken again: Redis lost them. So are runs whose send was
    never confirmed within ``SEND_GRACE``: the process sending them died before the XADD.
    """
    resend_before = max(now - RESEND_AFTER, lost_before or now - RESEND_AFTER)
    pick = (
        sa.select(ScheduledJobRun.id)
        .where(
            ScheduledJobRun.status == RunStatus.QUEUED,
            ScheduledJobRun.not_before <= now,
            sa.or_(
                ScheduledJobRun.queue_job_id.is_(None),
                ScheduledJobRun.enqueued_at < resend_before,
                sa.and_(
                    ScheduledJobRun.queue_job_id.startswith(SENDING), ScheduledJobRun.enqueued_at < now - SEND_GRACE
                ),
            ),
        )
        .order_by(ScheduledJobRun.not_before)
        .limit(limit)
        # After a loss, wait for runs another process is sending or confirming right now rather
        # than skip them: their message may have gone with the rest.
        .with_for_update(skip_locked=lost_before is None)
    )
    if run_ids is not None:
        pick = pick.where(ScheduledJobRun.id.in_(list(run_ids)))
    routes = (
        sa.select(ScheduledJobRun.id, ScheduledJob.target_type, ScheduledJob.target_queue)
        .join(ScheduledJob, ScheduledJob.id == ScheduledJobRun.job_id)
        .where(ScheduledJobRun.id.in_(pick.scalar_subquery()))
    )
    streams = {run_id: stream_for(kind, queue) for run_id, kind, queue in await session.execute(routes)}
    if not streams:
        return []
    sent: list[Sendable] = []
    for stream in set(streams.values()):
        rows = await session.execute(
            sa.update(ScheduledJobRun)
            .where(ScheduledJobRun.id.in_([r for r, s in streams.items() if s == stream]))
            .values(enqueued_at=now, queue_job_id=SENDING + stream)
            .returning(ScheduledJobRun.id, ScheduledJobRun.job_id, ScheduledJobRun.scheduled_for)
            .execution_options(synchronize_session=False)
        )
        sent.extend(Sendable(run_id, job_id, slot, stream) for run_id, job_id, slot in rows)
    return sent


async def confirm_sent(sessions: async_sessionmaker[AsyncSession], sent: Iterable[tuple[str, str]]) -> None:
    """The messages of these (run id, stream) are on their streams: no resend is needed.

    Conditional on the ``sending:`` mark, so a worker that already started the run (and wrote
    its own id there) is never overwritten.
    """
    by_stream: dict[str, list[str]] = defaultdict(list)
    for run_id, stream in sent:
        by_stream[stream].append(run_id)
    if not by_stream:
        return
    async with sessions.begin() as session:
        for stream, run_ids in by_stream.items():
            await session.execute(
                sa.update(ScheduledJobRun)
                .where(ScheduledJobRun.id.in_(run_ids), ScheduledJobRun.queue_job_id == SENDING + stream)
                .values(queue_job_id=stream)
                .execution_options(synchronize_session=False)
            )


async def send_runs(sessions: async_sessionmaker[AsyncSession], broker: AsyncBroker, runs: Sequence[Sendable]) -> None:
    """Put runs taken by ``take_sendable`` on their streams, then confirm them."""
    for run in runs:
        await send_run(broker, run.run_id, run.stream)
    await confirm_sent(sessions, [(run.run_id, run.stream) for run in runs])


async def send_due_runs(runtime: Services, broker: MercatoStreamBroker) -> int:
    """Send what became due, and what Redis lost; returns how many runs were sent."""
    now = runtime.clock()
    # The marker is gone after a flush or an empty restart: every message sent before now may
    # have gone with it. It is set again only once those runs are on their streams again, so a
    # round that fails (or a scheduler killed halfway) leaves the loss for the next round to see.
    lost = not await broker.client().exists(MARKER)
    sent = 0
    while True:
        async with runtime.sessions.begin() as session:
            runs = await take_sendable(session, now, lost_before=now if lost else None)
        await send_runs(runtime.sessions, broker, runs)
        sent += len(runs)
        if len(runs) < SEND_BATCH:  # sent runs are not taken again: their enqueued_at is now
            break
    if lost:
        await broker.client().set(MARKER, now.isoformat())
        log.warning("the broker's Redis had lost its data; sent %d waiting runs again", sent)
    return sent


# ----- hooks: changes reach Redis at once -----------------------------------------------------


class RedisSync:
    """SchedulerHooks for the async strategy (every process: web, CLI, workers, schedulers)."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock

    async def schedules_changed(self, job_ids: Sequence[str]) -> None:
        async with self.sessions() as session:
            jobs = list(await session.scalars(sa.select(ScheduledJob).where(ScheduledJob.id.in_(list(job_ids)))))
        entries = [e for e in map(entry_for, jobs) if e is not None]
        try:
            async with _store(self.settings) as store:
                await store.put(entries)
                await store.remove(set(job_ids) - {e.job_id for e in entries})
        except Exception as exc:  # the database has the change; the next reconcile brings Redis along
            log.warning("could not update Redis for %s: %s", ", ".join(job_ids), exc)

    async def runs_queued(self, run_ids: Sequence[str]) -> None:
        try:
            async with self.sessions.begin() as session:
                runs = await take_sendable(session, self.clock(), run_ids=run_ids)
            if runs:
                async with _sender(self.settings) as broker:
                    await send_runs(self.sessions, broker, runs)
        except Exception as exc:  # still queued: a scheduler process sends it shortly
            log.warning("could not send runs %s: %s", ", ".join(run_ids), exc)


@contextlib.asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[ScheduleStore]:
    redis = Redis.from_url(settings.redis_url)
    try:
        yield ScheduleStore(redis)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]  # the redis stubs predate aclose (redis 5)


@contextlib.asynccontextmanager
async def _sender(settings: Settings) -> AsyncIterator[MercatoStreamBroker]:
    broker = build_broker(settings, streams=[COMMAND_STREAM])
    try:
        yield broker
    finally:
        await broker.connection_pool.disconnect()


# ----- reconcile -----------------------------------------------------------------------------


async def reconcile_all(runtime: Services, store: ScheduleStore | None = None) -> str:
    """Make Redis match the database; returns a one-line report."""
    if store is None:
        async with _store(runtime.settings) as own:
            return await reconcile_all(runtime, own)
    # Redis first: a claim racing with us only moves both forward, so a Redis score read before
    # the database is never wrongly "ahead" of it.
    scores, specs = await store.snapshot()
    async with runtime.sessions() as session:
        rows = await session.execute(
            sa.select(
                ScheduledJob.id,
                ScheduledJob.schedule_type,
                ScheduledJob.schedule_value,
                ScheduledJob.timezone,
                ScheduledJob.anchor_at,
                ScheduledJob.start_at,
                ScheduledJob.end_at,
                ScheduledJob.next_run_at,
                ScheduledJob.is_enabled,
                ScheduledJob.deleted_at,
            ).where(ScheduledJob.is_enabled, ScheduledJob.deleted_at.is_(None), ScheduledJob.next_run_at.is_not(None))
        )
        expected = {e.job_id: e for e in map(entry_for, rows) if e is not None}
    added = [e for e in expected.values() if e.job_id not in scores or e.job_id not in specs]
    # A lower Redis score only costs a claim that finds nothing due (and then moves it forward);
    # a higher one would fire late, and a different definition would fire wrong: repair those.
    repaired = [
        e
        for e in expected.values()
        if e.job_id in scores
        and e.job_id in specs
        and (specs[e.job_id] != e.spec or scores[e.job_id] > e.next_at.timestamp() + 0.001)
    ]
    orphans = (set(scores) | set(specs)) - set(expected)
    await store.put(added + repaired)
    await store.remove(orphans)
    return (
        f"reconciled {len(expected)} schedule{'s' if len(expected) != 1 else ''} with Redis: "
        f"{len(added)} added, {len(repaired)} repaired, {len(orphans)} orphaned removed"
    )


# ----- the scheduler process's background duties ---------------------------------------------


class Maintenance:
    """Runs beside taskiq's scheduler loop: send due queued runs, settle lost runs, reconcile."""

    def __init__(self, runtime: Services, store: ScheduleStore, broker: MercatoStreamBroker) -> None:
        self.runtime = runtime
        self.store = store
        self.broker = broker
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        log.info(await reconcile_all(self.runtime, self.store))
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        settings = self.runtime.settings
        settle_at = reconcile_at = time.monotonic()
        while True:
            await asyncio.sleep(SEND_EVERY)
            try:
                await send_due_runs(self.runtime, self.broker)
                now = time.monotonic()
                if now >= settle_at:
                    settle_at = now + LEASE.total_seconds() / 3
                    settled = await settle_lost_runs(self.runtime.execution)
                    if settled:
                        log.warning("%d runs lost their worker; marked failed (retried per policy)", len(settled))
                if now >= reconcile_at + settings.scheduler_reconcile_interval_seconds:
                    reconcile_at = now
                    log.info(await reconcile_all(self.runtime, self.store))
            except Exception:
                log.exception("scheduler maintenance round failed; trying again")
