"""Heartbeats: which processes fire slots and run targets, and whether they are alive.

Every process that fires or executes (the poller in ``mercato serve``, ``mercato scheduler
start``, ``mercato worker scheduler``, each child of ``mercato worker start``) keeps one row in
``scheduler_processes`` up to date through a ``Heartbeat``: written at start, every
``SCHEDULER_HEARTBEAT_SECONDS``, and once more with ``stopped_at`` on a clean stop. A process
is *live* while it was heard from within ``LIVE_BEATS`` intervals and has not stopped; one that
died leaves its row behind, *lost*. Rows not heard from for ``KEEP`` are pruned.

The heartbeat never holds up firing: it is a task of its own, each write is one short
transaction bounded by a timeout, and a failed write (the database is down) is logged and
tried again at the next beat, never raised into the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.actors import Actor
from app.domain.ids import new_id
from app.domain.listing import owned_visible_to
from app.domain.services import Services
from app.domain.vocabulary import RunStatus
from app.persistence.models import ScheduledJobRun, SchedulerProcess

log = logging.getLogger("mercato.heartbeat")

#: A process not heard from for this many intervals is taken for gone.
LIVE_BEATS = 3
#: Rows of processes not heard from for this long are deleted.
KEEP = timedelta(days=1)
#: A process heard from within this window (live, stopped or lost) is listed.
LISTED = timedelta(hours=1)
#: How often a process prunes old rows (beside its heartbeat; any one process doing it is enough).
PRUNE_EVERY = timedelta(hours=1)


class ProcessKind(StrEnum):
    EMBEDDED = "embedded"
    POLLER = "poller"
    ASYNC_SCHEDULER = "async-scheduler"
    WORKER = "worker"


PROCESS_KINDS: tuple[str, ...] = tuple(kind.value for kind in ProcessKind)

#: The command that runs each kind of process (what the health banner tells people to start).
COMMANDS: dict[ProcessKind, str] = {
    ProcessKind.EMBEDDED: "mercato serve",
    ProcessKind.POLLER: "mercato scheduler start",
    ProcessKind.ASYNC_SCHEDULER: "mercato worker scheduler",
    ProcessKind.WORKER: "mercato worker start",
}


def app_version() -> str:
    try:
        return version("mercato-scheduler")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"


def live_after(now: datetime, heartbeat_seconds: int) -> datetime:
    """A process last seen after this instant (and not stopped) is live."""
    return now - timedelta(seconds=heartbeat_seconds * LIVE_BEATS)


class Heartbeat:
    """One process's row, kept fresh until ``stop``. ``in_flight`` counts the runs it executes."""

    def __init__(self, services: Services, kind: ProcessKind, in_flight: Callable[[], int] = lambda: 0) -> None:
        self.services = services
        self.kind = kind
        self.in_flight = in_flight
        self.id = new_id()
        self.interval = services.settings.scheduler_heartbeat_seconds
        self._task: asyncio.Task[None] | None = None
        self._pruned_at: datetime | None = None
        self._failing = False
        self._first = asyncio.Event()

    async def start(self) -> None:
        """Write the first beat and keep beating in the background (a second call does nothing)."""
        if self._task is not None:
            return
        self.host, self.pid = socket.gethostname(), os.getpid()  # now: a worker's child is forked
        self._task = asyncio.create_task(self._beat_forever(), name=f"heartbeat:{self.kind}")
        first = asyncio.create_task(self._first.wait())
        await asyncio.wait({first, self._task}, return_when=asyncio.FIRST_COMPLETED)  # (stopped meanwhile)
        first.cancel()

    async def stop(self) -> None:
        """Stop beating and mark the row stopped: the process is gone, and says so."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        await self._write(self._stopped)

    async def _beat_forever(self) -> None:
        # One beat at a time, the first one included (two would race to insert the row).
        while True:
            await self._write(self._beat)
            self._first.set()
            await asyncio.sleep(self.interval)

    async def _write(self, statement: Callable[[AsyncSession, datetime], Awaitable[None]]) -> None:
        try:
            async with asyncio.timeout(max(self.interval, 2)):
                async with self.services.sessions.begin() as session:
                    await statement(session, self.services.clock())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The database is down or slow: the next beat tries again. Said once per outage.
            if not self._failing:
                log.warning("heartbeat not written (%s): %s", type(exc).__name__, exc, extra={"kind": self.kind})
            self._failing = True
        else:
            if self._failing:
                log.info("heartbeat written again", extra={"kind": self.kind})
            self._failing = False

    async def _beat(self, session: AsyncSession, now: datetime) -> None:
        updated = await session.execute(
            sa.update(SchedulerProcess)
            .where(SchedulerProcess.id == self.id)
            .values(last_seen_at=now, runs_in_flight=self.in_flight())
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]  # first beat, or the row was pruned
            session.add(
                SchedulerProcess(
                    id=self.id,
                    kind=self.kind,
                    host=self.host[:255],
                    pid=self.pid,
                    version=app_version()[:64],
                    strategy=self.services.settings.queue_strategy,
                    started_at=now,
                    last_seen_at=now,
                    runs_in_flight=self.in_flight(),
                )
            )
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            await prune(session, now)

    async def _stopped(self, session: AsyncSession, now: datetime) -> None:
        await session.execute(
            sa.update(SchedulerProcess)
            .where(SchedulerProcess.id == self.id)
            .values(last_seen_at=now, stopped_at=now, runs_in_flight=0)
        )


async def prune(session: AsyncSession, now: datetime) -> int:
    """Delete the rows of processes not heard from for ``KEEP``."""
    result = await session.execute(sa.delete(SchedulerProcess).where(SchedulerProcess.last_seen_at < now - KEEP))
    return int(result.rowcount)  # type: ignore[attr-defined]


# ----- reading -------------------------------------------------------------------------------


class ProcessState(StrEnum):
    LIVE = "live"
    STOPPED = "stopped"
    LOST = "lost"


PROCESS_STATES: tuple[str, ...] = tuple(state.value for state in ProcessState)


@dataclass(frozen=True)
class ProcessView:
    """A process as a caller may see it: ``host``, ``pid``, ``version`` and its own runs in
    flight are the superadmin's (None for everyone else)."""

    id: str
    kind: str
    state: ProcessState
    strategy: str
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    host: str | None
    pid: int | None
    version: str | None
    runs_in_flight: int | None


@dataclass(frozen=True)
class ProcessListing:
    processes: list[ProcessView]
    #: Runs running right now within the caller's scope (every run, for a superadmin).
    runs_in_flight: int
    #: Live processes by kind.
    live: dict[ProcessKind, int]
    #: Whether the processes' host, pid, version and own runs are shown (superadmins only).
    details: bool


async def process_listing(services: Services, actor: Actor, *, limit: int = 200) -> ProcessListing:
    """The processes heard from in the last hour, and the runs in flight of the caller's scope.

    Processes are shared infrastructure: everyone who may view schedules sees which kinds run
    and whether they are alive; where they run (host, pid, version) and what each executes
    (possibly other tenants' runs) is for superadmins. Everyone else gets one figure: the runs
    of their own scope running now, counted from the runs table.
    """
    views = await processes(services, limit=limit)
    if not actor.is_superadmin:
        views = [replace(view, host=None, pid=None, version=None, runs_in_flight=None) for view in views]
    live: dict[ProcessKind, int] = {kind: 0 for kind in ProcessKind}
    for view in views:
        if view.state == ProcessState.LIVE and view.kind in live:
            live[ProcessKind(view.kind)] += 1
    async with services.sessions() as session:
        running = await session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledJobRun)
            .where(
                ScheduledJobRun.status == RunStatus.RUNNING,
                owned_visible_to(actor, ScheduledJobRun.tenant_id, ScheduledJobRun.organization_id),
            )
        )
    return ProcessListing(views, running or 0, live, actor.is_superadmin)


async def processes(services: Services, *, limit: int = 200) -> list[ProcessView]:
    """Processes heard from in the last hour, live ones first, then the most recently seen."""
    now = services.clock()
    live_since = live_after(now, services.settings.scheduler_heartbeat_seconds)
    async with services.sessions() as session:
        rows = (
            await session.scalars(
                sa.select(SchedulerProcess)
                .where(SchedulerProcess.last_seen_at >= now - LISTED)
                .order_by(SchedulerProcess.last_seen_at.desc(), SchedulerProcess.id)
                .limit(limit)
            )
        ).all()
    views = [
        ProcessView(
            id=row.id,
            kind=row.kind,
            state=_state(row, live_since),
            strategy=row.strategy,
            started_at=row.started_at,
            last_seen_at=row.last_seen_at,
            stopped_at=row.stopped_at,
            host=row.host,
            pid=row.pid,
            version=row.version,
            runs_in_flight=row.runs_in_flight,
        )
        for row in rows
    ]
    return sorted(views, key=lambda view: view.state != ProcessState.LIVE)  # stable: newest first within


def _state(row: SchedulerProcess, live_since: datetime) -> ProcessState:
    if row.stopped_at is not None:
        return ProcessState.STOPPED
    return ProcessState.LIVE if row.last_seen_at >= live_since else ProcessState.LOST


async def live_counts(session: AsyncSession, now: datetime, heartbeat_seconds: int) -> dict[ProcessKind, int]:
    """How many processes of each kind are live (every kind, zero included)."""
    rows = await session.execute(
        sa.select(SchedulerProcess.kind, sa.func.count())
        .where(
            SchedulerProcess.last_seen_at >= live_after(now, heartbeat_seconds),
            SchedulerProcess.stopped_at.is_(None),
        )
        .group_by(SchedulerProcess.kind)
    )
    counts = dict(rows.tuples().all())
    return {kind: counts.get(kind, 0) for kind in ProcessKind}
