"""Claiming slots in the source's ``pre_send``: the database decides, once per slot.

All the ``pre_send`` calls of one scheduler tick are gathered into one claim transaction
(``claim_due_slots`` restricted to the schedules taskiq offered), so a tick with 200 due slots
costs one transaction, not 200. Two scheduler processes offering the same slot both call it;
``FOR UPDATE SKIP LOCKED`` and the unique run row per slot leave exactly one of them a run.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from taskiq import AsyncBroker

from app.domain.firing import MISFIRE_GRACE, ClaimResult, claim_due_slots
from app.domain.outcomes import announce_skipped
from app.domain.services import Services
from app.persistence.models import ScheduledJob
from app.strategies.taskiq_store import ScheduleStore
from app.strategies.taskiq_sync import Sendable, confirm_sent, send_runs, take_sendable

log = logging.getLogger("mercato.claim")

#: Schedules per claim transaction at most (and at most ``SCHEDULER_CLAIM_BATCH_SIZE``): the
#: claim holds their row locks until it commits (a few hundred milliseconds for a thousand),
#: and workers recording runs of those schedules wait for them.
CLAIM_CHUNK = 1000
#: A schedule row locked by someone else is tried again after 50 ms, 100 ms, ... (~1.8 s in all).
CLAIM_RETRIES = 8
CLAIM_RETRY_DELAY = 0.05


@dataclass
class _Request:
    job_id: str
    slot: datetime
    future: asyncio.Future[tuple[str, str] | None]
    attempts: int = 0


@dataclass
class _Batch:
    runs: dict[str, list[tuple[str, datetime, str]]] = field(default_factory=lambda: defaultdict(list))
    still_due: set[str] = field(default_factory=set)
    moves: dict[str, datetime] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    claimed: ClaimResult | None = None


class SlotClaimer:
    """Gathers the ``pre_send`` calls of one tick into claim transactions of ``CLAIM_CHUNK``.

    The claim skips schedule rows locked by someone else (another scheduler claiming them, a
    worker recording a run). A slot still due after that is tried again a moment later: once
    another scheduler has committed it is no longer due (nothing to send here); once a worker
    has committed it is claimed here. Waiting on the lock instead would queue the workers'
    updates of that row behind us.
    """

    def __init__(self, runtime: Services, store: ScheduleStore, broker: AsyncBroker) -> None:
        self.runtime = runtime
        self.store = store
        self.broker = broker
        self._pending: list[_Request] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sent: list[tuple[str, str, asyncio.Future[None]]] = []
        self._confirmer: asyncio.Task[None] | None = None

    async def claim(self, job_id: str, slot: datetime) -> tuple[str, str] | None:
        """(run id, stream) of the run this slot became here, or None: nothing to send."""
        request = _Request(job_id, slot, asyncio.get_running_loop().create_future())
        self._enqueue(request)
        return await request.future

    async def sent(self, run_id: str, stream: str) -> None:
        """The run's message is on its stream (``post_send``): confirmed in one statement per tick."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sent.append((run_id, stream, future))
        if self._confirmer is None:
            self._confirmer = asyncio.create_task(self._confirm())
        await future

    async def _confirm(self) -> None:
        await asyncio.sleep(0.002)
        sent, self._sent, self._confirmer = self._sent, [], None
        try:
            await confirm_sent(self.runtime.sessions, [(run_id, stream) for run_id, stream, _ in sent])
        except Exception as exc:  # unconfirmed runs are sent again after SEND_GRACE: a harmless duplicate
            log.warning("confirming %d sent runs failed: %s", len(sent), exc)
        for *_, future in sent:
            future.set_result(None)

    def _enqueue(self, request: _Request) -> None:
        self._pending.append(request)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        # Every send of a tick starts in the same loop iteration; a moment's wait gathers them.
        await asyncio.sleep(0.002)
        requests, self._pending, self._flusher = self._pending, [], None
        size = min(CLAIM_CHUNK, self.runtime.settings.scheduler_claim_batch_size)
        for start in range(0, len(requests), size):
            chunk = requests[start : start + size]
            try:
                batch = await self._claim(sorted({r.job_id for r in chunk}))
            except Exception as exc:  # database unreachable: nothing can be sent now
                log.warning("claiming %d slots failed: %s", len(chunk), exc)
                batch = _Batch()
            await self._settle(chunk, batch)

    async def _claim(self, job_ids: list[str]) -> _Batch:
        batch = _Batch()
        async with self.runtime.sessions.begin() as session:
            now = self.runtime.clock()
            claimed = await claim_due_slots(
                session, now, limit=len(job_ids), grace=MISFIRE_GRACE, on_sqlite=False, job_ids=job_ids
            )
            sendable = (
                await take_sendable(session, now, run_ids=claimed.queued, limit=len(claimed.queued))
                if claimed.queued
                else []
            )
            rows = await session.execute(
                sa.select(
                    ScheduledJob.id, ScheduledJob.next_run_at, ScheduledJob.is_enabled, ScheduledJob.deleted_at
                ).where(ScheduledJob.id.in_(job_ids))
            )
            for job_id, next_run_at, enabled, deleted_at in rows:
                if not enabled or deleted_at is not None or next_run_at is None:
                    batch.gone.append(job_id)
                elif next_run_at <= now:
                    batch.still_due.add(job_id)  # locked by someone else: not claimed yet
                else:
                    batch.moves[job_id] = next_run_at
            batch.gone.extend(set(job_ids) - set(batch.moves) - batch.still_due - set(batch.gone))
        for run in sendable:
            batch.runs[run.job_id].append((run.run_id, run.slot, run.stream))
        batch.claimed = claimed
        return batch

    async def _settle(self, requests: list[_Request], batch: _Batch) -> None:
        answers: list[tuple[_Request, tuple[str, str] | None]] = []
        for request in requests:
            runs = batch.runs.get(request.job_id)
            if runs:
                # The run of this very slot if there is one (catch-up may have made others).
                pick = next((r for r in runs if r[1] == request.slot), runs[0])
                runs.remove(pick)
                answers.append((request, (pick[0], pick[2])))
            elif request.job_id in batch.still_due and request.attempts < CLAIM_RETRIES:
                request.attempts += 1
                asyncio.get_running_loop().call_later(CLAIM_RETRY_DELAY * request.attempts, self._enqueue, request)
            else:
                answers.append((request, None))
        # Runs no request asked for (several catch-up runs of one schedule): send them here.
        unasked = [
            Sendable(run_id, job_id, slot, stream)
            for job_id, runs in batch.runs.items()
            for run_id, slot, stream in runs
        ]
        if unasked:
            try:
                await send_runs(self.runtime.sessions, self.broker, unasked)
            except Exception as exc:  # unconfirmed: a scheduler sends them again after SEND_GRACE
                log.warning("sending %d runs failed: %s", len(unasked), exc)
        for request, answer in answers:
            request.future.set_result(answer)
        # After the answers, so the runs go to their streams meanwhile: the log lines, the
        # events of skipped slots (as the local poller's), the source brought up to date.
        if batch.claimed is not None:
            claimed = batch.claimed
            claimed.log()
            if claimed.jobs:
                log.info(
                    "claimed %d schedules: %d runs queued, %d skipped, %d missed",
                    claimed.jobs,
                    len(claimed.queued),
                    len(claimed.skipped),
                    claimed.missed,
                )
            await announce_skipped(self.runtime.execution, claimed.skipped)
        try:
            await self.store.advance(batch.moves)
            await self.store.remove(batch.gone)
        except Exception as exc:  # Redis is only a hint; the next reconcile repairs it
            log.warning("updating the schedule source failed: %s", exc)
