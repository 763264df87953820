"""The local strategy: a poller that fires slots on time and runs targets in-process.

It sleeps until the earliest due slot (or the poll interval, whichever is sooner) and wakes at
once when a schedule changes: through an in-process signal, and on PostgreSQL through
``LISTEN/NOTIFY`` so a change made by another process wakes it too. Any number of pollers may
share one database; claiming (see ``app.domain.firing``) makes each slot fire exactly once.
Queued runs are started in the background, as many as there are free execution slots: as soon
as a target ends (its outcome is written meanwhile, with others that ended together) and, in a
burst, while the rest of the burst is still being claimed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta

from app.domain.batching import Coalescer
from app.domain.dispatch import next_wakeup
from app.domain.execution import LEASE
from app.domain.firing import MISFIRE_GRACE, ClaimResult, claim_due_slots
from app.domain.heartbeats import Heartbeat, ProcessKind
from app.domain.history import ensure_cleanup_schedule
from app.domain.outcomes import (
    EndedRun,
    LeaseKeeper,
    RecordedOutcome,
    announce_skipped,
    record_outcomes,
    settle_lost_runs,
)
from app.domain.services import Services
from app.domain.starting import StartedRun, prepare_started, run_target, take_runnable
from app.strategies.notify import PgNotifications

log = logging.getLogger("mercato.poller")

#: Seconds before looking again at something due that another transaction holds.
BUSY_RETRY = timedelta(milliseconds=50)


def _log_claims(claims: list[ClaimResult]) -> None:
    for claimed in claims:
        claimed.log()
        if claimed.jobs:
            log.info(
                "claimed slots",
                extra={
                    "jobs": claimed.jobs,
                    "queued": len(claimed.queued),
                    "skipped": len(claimed.skipped),
                    "missed": claimed.missed,
                },
            )


class LocalScheduler:
    def __init__(
        self, runtime: Services, *, concurrency: int | None = None, kind: ProcessKind = ProcessKind.POLLER
    ) -> None:
        """``kind``: what the heartbeat says this process is (the poller of ``mercato serve``
        is ``embedded``)."""
        self.runtime = runtime
        self.concurrency = concurrency or runtime.settings.scheduler_concurrency
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = asyncio.Event()
        #: A schedule or a queued run changed: the next round claims and works out the next
        #: wake-up (targets that end start the next runs themselves, without a round).
        self._recheck = True
        #: When something is next due (a slot, a queued run); a round from then on claims.
        self._due_at: datetime | None = None
        #: The next wake-up was worked out with every execution slot busy, so without the queued
        #: runs: work it out again once a slot is free.
        self._recheck_when_free = False
        #: Starting queued runs in the background (``_start_soon``), one take at a time.
        self._starter: asyncio.Task[None] | None = None
        self._start_wanted = False
        #: Queued runs may be waiting for an execution slot: the last take filled every free
        #: slot, or runs were queued since. A target that ends starts the next runs only then
        #: (at a steady 167 runs a second, a take after every one that ended would keep the
        #: database busy with takes that find nothing).
        self._maybe_queued = True
        self._taking = asyncio.Lock()
        self._started = 0
        self._stopping = False
        #: Runs whose target is running, and runs whose target has ended and whose outcome is
        #: being written. A run's execution slot is free as soon as its target ends, so the next
        #: runs are taken while the last ones' outcomes are written.
        self._running: dict[str, asyncio.Task[None]] = {}
        self._recording: dict[str, asyncio.Task[None]] = {}
        self._notifications: PgNotifications | None = None
        self._settled_at: datetime | None = None
        # Outcomes of runs that end at about the same time are written in one transaction.
        self._recorder: Coalescer[EndedRun, RecordedOutcome] = Coalescer(
            lambda finishes: record_outcomes(runtime.execution, finishes)
        )
        self.heartbeat = Heartbeat(runtime, kind, lambda: self.in_flight)

    # SchedulerHooks: the service calls these after a change commits.
    async def schedules_changed(self, job_ids: Sequence[str]) -> None:
        self._changed()

    async def runs_queued(self, run_ids: Sequence[str]) -> None:
        self._changed()

    def _changed(self) -> None:
        self._recheck = True
        self._maybe_queued = True
        self._wake.set()

    async def tick(self, *, wait: bool = True) -> int:
        """One round: claim due slots, start runnable runs.

        With ``wait`` (a test, a one-off round) the runs are started before it returns, and it
        returns how many started during the round. ``run()`` does not wait: runs are started in
        the background (``_start_soon``) while slots are claimed and as execution slots free up.
        """
        settings = self.runtime.settings
        started_before = self._started
        claims: list[ClaimResult] = []
        try:
            while True:
                now = self.runtime.clock()
                async with self.runtime.sessions.begin() as session:
                    claimed = await claim_due_slots(
                        session,
                        now,
                        limit=settings.scheduler_claim_batch_size,
                        grace=MISFIRE_GRACE,
                        on_sqlite=settings.is_sqlite,
                    )
                claims.append(claimed)
                if claimed.queued:
                    self._maybe_queued = True
                await announce_skipped(self.runtime.execution, claimed.skipped)
                if not claimed.full:
                    break
                if not settings.is_sqlite:
                    # A burst: the runs claimed so far start while the rest is claimed (on
                    # PostgreSQL; SQLite has one writer at a time, so they would only take turns).
                    self._start_soon()
        finally:
            # The claims have committed, so the lines are true; written after the last claim
            # of a burst: its ten thousand log lines must not hold up the claims.
            asyncio.get_running_loop().call_soon(_log_claims, claims)
        if self._settled_at is None or now - self._settled_at > LEASE / 3:
            self._settled_at = now
            await settle_lost_runs(self.runtime.execution)
        if not wait:
            self._start_soon()
            return 0
        await self._start_runnable()
        return self._started - started_before

    def _start_soon(self) -> None:
        """Start queued runs in the background: now, and again after the take under way."""
        self._start_wanted = True
        if self._starter is None and not self._stopping:
            self._starter = asyncio.create_task(self._start_while_wanted())

    async def _start_while_wanted(self) -> None:
        try:
            while self._start_wanted and not self._stopping:
                self._start_wanted = False
                await self._start_runnable()
        except Exception:
            # The database is down or restarting: the next round (with its back-off) tries again.
            log.exception("starting queued runs failed")
            self._changed()
        finally:
            self._starter = None

    async def _start_runnable(self) -> int:
        """Start as many queued runs whose time has come as there are free execution slots."""
        async with self._taking:  # one take at a time, or two would both fill the free slots
            free = self.concurrency - len(self._running)
            if free <= 0 or len(self._recording) >= self.concurrency:
                # Every slot busy, or a batch of outcomes still being written: the database is
                # behind, and taking more would only pile up outcomes in memory.
                return 0
            async with self.runtime.sessions.begin() as session:
                runs = await take_runnable(
                    session,
                    self.runtime.clock(),
                    limit=free,
                    on_sqlite=self.runtime.settings.is_sqlite,
                    worker=self.worker,
                )
                prepared = await prepare_started(self.runtime.execution, session, runs)
            self._maybe_queued = len(runs) >= free
            for run in prepared:
                self._running[run.run.id] = asyncio.create_task(self._execute(run), name=f"run:{run.run.id}")
            self._started += len(prepared)
            return len(prepared)

    async def _round(self) -> float:
        """One round of ``run()``: claim when something is due or changed; returns how long to
        sleep unless woken."""
        if self._recheck or self._due_at is None or self.runtime.clock() >= self._due_at:
            # Cleared before the round, so a change that arrives during it is not lost.
            self._recheck = False
            await self.tick(wait=False)
            self._due_at = await self._next_due()
        return max(0.0, (self._due_at - self.runtime.clock()).total_seconds())

    async def _execute(self, prepared: StartedRun) -> None:
        run_id = prepared.run.id
        try:
            finish = await run_target(self.runtime.execution, prepared)
            self._recording[run_id] = self._running.pop(run_id)
            self._slot_freed()
            await self._recorder.submit((prepared.run, prepared.job, finish))
        except Exception:
            log.exception("run crashed the executor", extra={"run_id": run_id})
        finally:
            self._running.pop(run_id, None)
            self._recording.pop(run_id, None)
            self._slot_freed()

    def _slot_freed(self) -> None:
        if self._recheck_when_free:
            self._changed()  # the next wake-up was worked out without the queued runs
        if self._maybe_queued:
            self._start_soon()

    async def drain(self) -> None:
        """Wait for every run this poller started, outcome written."""
        while self._starter or self._running or self._recording:
            if self._starter:
                await asyncio.gather(self._starter, return_exceptions=True)
            await asyncio.gather(*self._running.values(), *self._recording.values(), return_exceptions=True)

    async def run(self) -> None:
        """Poll until ``stop()``; then finish what was claimed."""
        self.runtime.hooks.add(self)
        if not self.runtime.settings.is_sqlite:
            self._notifications = PgNotifications(self.runtime.settings.database_url, self._changed)
            await self._notifications.start()
        leases = LeaseKeeper(self.runtime.execution, lambda: [*self._running, *self._recording])
        leases.start()
        await self.heartbeat.start()
        log.info("poller started", extra={"worker": self.worker})
        failures = 0
        try:
            while not self._stopping:
                # Cleared before the round, so a wake-up that arrives during it is not lost.
                self._wake.clear()
                try:
                    delay = await self._round()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # The database is down or restarting: back off (0.5 s, 1 s, 2 s, ... 5 s),
                    # neither hammering it nor firing much later than needed once it is back.
                    failures += 1
                    delay = min(0.5 * 2 ** (failures - 1), 5.0)
                    self._recheck = True
                    log.exception("poller round failed; retrying in %.1f s", delay)
                if self._stopping:
                    break
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                except TimeoutError:
                    pass
        finally:
            self.runtime.hooks.remove(self)
            if self._notifications:
                await self._notifications.stop()
            # Leases are renewed until the last run is done: a slow run finishing during a
            # graceful stop must not be taken for lost (and retried) by another poller.
            await self.drain()
            await leases.stop()
            await self.heartbeat.stop()
            log.info("poller stopped", extra={"worker": self.worker})

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def in_flight(self) -> int:
        return len(self._running) + len(self._recording)

    def stop(self) -> None:
        """Claim nothing more; ``run()`` returns once the runs already started have finished."""
        self._stopping = True
        self._wake.set()

    def abort(self) -> None:
        """Stop now: interrupt the runs in flight. Their leases run out and they are settled as
        failed (and retried per policy) by the next poller, as if the process had died."""
        self.stop()
        for task in list(self._running.values()):
            task.cancel()

    async def _next_due(self) -> datetime:
        """When the next round should claim: the next slot or queued run, at most a poll away."""
        now = self.runtime.clock()
        poll = timedelta(milliseconds=self.runtime.settings.scheduler_poll_interval_ms)
        # With every execution slot busy, a queued run cannot start before one finishes (which
        # wakes us anyway): don't spin on it.
        self._recheck_when_free = len(self._running) >= self.concurrency
        async with self.runtime.sessions() as session:
            wake_at = await next_wakeup(session, queued_after=None if self._recheck_when_free else now)
        if wake_at is None:
            return now + poll
        if wake_at <= now:
            # Due, yet this round left it: its row is locked by someone else (another poller, a
            # long transaction). Look again shortly instead of spinning on it.
            return now + BUSY_RETRY
        return min(now + poll, wake_at)


async def run_until_signalled(runtime: Services) -> None:
    """``mercato scheduler start``: poll until SIGINT/SIGTERM, then finish the claimed runs."""
    await ensure_cleanup_schedule(runtime.scheduler)
    poller = LocalScheduler(runtime)

    def on_signal() -> None:
        if poller.stopping:
            print("stopping now; interrupted runs are settled as failed when their lease runs out", flush=True)
            poller.abort()
            return
        poller.stop()
        if poller.in_flight:
            print(
                f"stopping: finishing {poller.in_flight} run(s) in flight (Ctrl+C again to interrupt them)", flush=True
            )

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    print(
        f"scheduler started (local strategy, {runtime.settings.database_url.split('://')[0]}); Ctrl+C to stop",
        flush=True,
    )
    await poller.run()
    print("scheduler stopped", flush=True)
