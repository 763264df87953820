"""The async strategy's taskiq ``ScheduleSource``: exact slots from a Redis sorted set.

Redis holds what can be rebuilt from the database: a sorted set of schedule ids scored by their
next slot (epoch seconds, the database's ``next_run_at``) and a hash of each schedule's timing
definition. ``get_schedules`` reads only the schedules due within a short horizon (no keyspace
SCAN) and hands taskiq one ``ScheduledTask`` per slot with its exact ``time``, computed by our
own engine: cron semantics, DST and intervals are the ones the rest of the product uses.

``pre_send`` is where a slot is claimed (``SlotClaimer``): the claim runs in PostgreSQL, so
however many ``taskiq scheduler`` processes race for a slot, one gets the run row and the others
cancel their send.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Sequence

from redis.asyncio import Redis
from taskiq import ScheduledTask, ScheduleSource
from taskiq.exceptions import ScheduledTaskCancelledError

from app import engine
from app.persistence.models import ScheduledJob
from app.strategies.taskiq_broker import RUN_TASK

log = logging.getLogger("mercato.source")

UTC = timezone.utc
#: Slots listed ahead of now. taskiq applies a refresh one tick after it starts it, so the list
#: must already hold the slots of the next two ticks: an every-second schedule fires every second.
HORIZON = timedelta(seconds=3)
MAX_SLOTS_PER_SCHEDULE = 10
#: A next slot this far in the past should have been claimed already (its claim gave up, or
#: Redis was just rebuilt): offer it to taskiq again under a fresh id every ``RETRY_EVERY``.
OVERDUE = timedelta(seconds=2)
RETRY_EVERY = 5


# ----- what Redis holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    job_id: str
    next_at: datetime
    spec: str  # the timing definition, canonical JSON


def entry_for(job: ScheduledJob) -> Entry | None:
    """The Redis entry a schedule row should have; None when it must not fire."""
    if not job.is_enabled or job.deleted_at is not None or job.next_run_at is None:
        return None
    spec = {
        "type": job.schedule_type,
        "value": job.schedule_value,
        "tz": job.timezone,
        # Only intervals hang on their anchor: identical crons share one spec (and one slot list).
        "anchor": _iso(job.anchor_at) if job.schedule_type == "interval" else None,
        "start": _iso(job.start_at),
        "end": _iso(job.end_at),
    }
    return Entry(job.id, job.next_run_at, json.dumps(spec, sort_keys=True, separators=(",", ":")))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@lru_cache(maxsize=16_384)
def schedule_of(spec: str) -> engine.Schedule:
    data = json.loads(spec)
    instant = lambda v: datetime.fromisoformat(v) if v else None  # noqa: E731
    return engine.parse_schedule(
        data["type"], data["value"], data["tz"], anchor=instant(data["anchor"]),
        start_at=instant(data["start"]), end_at=instant(data["end"]), min_interval_seconds=1,
    )


class ScheduleStore:
    """The Redis layout: ``<prefix>:due`` (sorted set) and ``<prefix>:defs`` (hash)."""

    def __init__(self, redis: Redis, prefix: str = "mercato:schedules") -> None:
        self.redis = redis
        self.due_key = f"{prefix}:due"
        self.defs_key = f"{prefix}:defs"

    async def put(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.defs_key, mapping={e.job_id: e.spec for e in entries})
            pipe.zadd(self.due_key, {e.job_id: e.next_at.timestamp() for e in entries})
            await pipe.execute()

    async def remove(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        if not ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.due_key, *ids)
            pipe.hdel(self.defs_key, *ids)
            await pipe.execute()

    async def advance(self, moves: dict[str, datetime]) -> None:
        """Move scores forward only (GT), and only for schedules still present (XX)."""
        if moves:
            await self.redis.zadd(self.due_key, {k: v.timestamp() for k, v in moves.items()}, xx=True, gt=True)

    async def upcoming(self, until: datetime) -> list[tuple[str, datetime, str]]:
        """(id, next slot, spec) of every schedule whose next slot is at or before ``until``."""
        scored = await self.redis.zrange(self.due_key, "-inf", until.timestamp(), byscore=True, withscores=True)
        if not scored:
            return []
        specs = await self.redis.hmget(self.defs_key, [member for member, _ in scored])
        return [
            (member.decode(), datetime.fromtimestamp(score, UTC), spec.decode())
            for (member, score), spec in zip(scored, specs)
            if spec is not None  # half-written entry: reconcile repairs it
        ]

    async def snapshot(self) -> tuple[dict[str, float], dict[str, str]]:
        scores = {m.decode(): s for m, s in await self.redis.zrange(self.due_key, 0, -1, withscores=True)}
        specs = {k.decode(): v.decode() for k, v in (await self.redis.hgetall(self.defs_key)).items()}
        return scores, specs


def _later_slots(spec: str, first: datetime, now: datetime) -> list[datetime]:
    try:
        return schedule_of(spec).slots_between(max(first, now), now + HORIZON, limit=MAX_SLOTS_PER_SCHEDULE)
    except Exception as exc:  # one unreadable entry must not stop the others; its claim records why
        log.warning("cannot read the timing of a schedule in Redis (%s): %s", spec, exc)
        return []


# ----- the taskiq schedule source ------------------------------------------------------------


class MercatoScheduleSource(ScheduleSource):
    """Used by ``taskiq scheduler`` (``mercato worker scheduler``) processes."""

    def __init__(self, settings, broker, *, runtime=None) -> None:
        self.settings = settings
        self.broker = broker
        self._own_runtime = runtime is None
        self.runtime = runtime
        self.store: ScheduleStore | None = None
        self.claimer = None
        self._maintenance = None
        #: The tasks of the last listing, by (schedule id, slot, retry round).
        self._listed: dict[tuple[str, datetime, int], ScheduledTask] = {}

    def connect(self) -> None:
        """Open the database and Redis (``startup`` does this; tests call it alone)."""
        from app.runtime import Runtime
        from app.strategies.taskiq_claim import SlotClaimer

        self.runtime = self.runtime or Runtime.create(self.settings)
        self.store = ScheduleStore(Redis.from_url(self.settings.redis_url))
        self.claimer = SlotClaimer(self.runtime, self.store, self.broker)

    async def startup(self) -> None:
        from app.domain.history import ensure_cleanup_schedule
        from app.strategies.taskiq_sync import Maintenance

        self.connect()
        await ensure_cleanup_schedule(self.runtime)
        self._maintenance = Maintenance(self.runtime, self.store, self.broker)
        await self._maintenance.start()

    async def shutdown(self) -> None:
        if self._maintenance:
            await self._maintenance.stop()
        if self.store:
            await self.store.redis.aclose()
        if self.runtime and self._own_runtime:
            await self.runtime.close()

    async def get_schedules(self) -> list[ScheduledTask]:
        now = self.runtime.clock()
        listed: dict[tuple[str, datetime, int], ScheduledTask] = {}
        slot_lists: dict[tuple[str, datetime], list[datetime]] = {}
        for job_id, first, spec in await self.store.upcoming(now + HORIZON):
            # A next slot in the past fires at once; the claim applies the catch-up policy.
            if (spec, first) not in slot_lists:
                slot_lists[(spec, first)] = [first, *_later_slots(spec, first, now)]
            for slot in slot_lists[(spec, first)]:
                # taskiq sends a schedule id once; a fresh id lets an overdue slot try again.
                retry = int(now.timestamp()) // RETRY_EVERY if slot < now - OVERDUE else -1
                key = (job_id, slot, retry)
                task = self._listed.get(key)
                if task is None or "job_id" not in task.kwargs:  # new, or sent (pre_send rewrote it)
                    schedule_id = f"{job_id}@{slot.isoformat()}" + (f"~{retry}" if retry >= 0 else "")
                    task = ScheduledTask(
                        task_name=RUN_TASK, labels={}, args=[], kwargs={"job_id": job_id, "slot": slot.isoformat()},
                        schedule_id=schedule_id, time=slot,
                    )
                listed[key] = task
        # The same slot is listed for a few ticks before it is due: its task is made once. The
        # refresh runs in the scheduler's event loop beside the sends of the tick, so the time
        # it takes delays them (ten thousand schedules a minute list some 700 slots a tick).
        self._listed = listed
        return list(listed.values())

    async def pre_send(self, task: ScheduledTask) -> None:
        slot = datetime.fromisoformat(task.kwargs["slot"])
        claimed = await self.claimer.claim(task.kwargs["job_id"], slot)
        if claimed is None:
            raise ScheduledTaskCancelledError  # another scheduler has it, or it may not fire
        run_id, stream = claimed
        # What goes on the stream is the run, not the slot: mercato.run(run_id).
        task.kwargs = {"run_id": run_id}
        task.task_id = run_id
        task.labels = {**task.labels, "queue_name": stream}

    async def post_send(self, task: ScheduledTask) -> None:
        # The message is on the stream: the run no longer waits to be sent again (SEND_GRACE).
        await self.claimer.sent(task.task_id, task.labels["queue_name"])
