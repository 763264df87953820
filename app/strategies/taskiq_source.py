"""The async strategy's taskiq ``ScheduleSource``: exact slots from a Redis sorted set.

Redis holds what can be rebuilt from the database (``app.strategies.taskiq_store``).
``get_schedules`` reads only the schedules due within a short horizon (no keyspace
SCAN) and hands taskiq one ``ScheduledTask`` per slot with its exact ``time``, computed by our
own engine: cron semantics, DST and intervals are the ones the rest of the product uses.

``pre_send`` is where a slot is claimed (``SlotClaimer``): the claim runs in PostgreSQL, so
however many ``taskiq scheduler`` processes race for a slot, one gets the run row and the others
cancel their send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from taskiq import ScheduledTask, ScheduleSource
from taskiq.exceptions import ScheduledTaskCancelledError

from app.domain.heartbeats import Heartbeat, ProcessKind
from app.domain.history import ensure_cleanup_schedule
from app.domain.services import Services
from app.settings import Settings
from app.strategies.taskiq_broker import RUN_TASK, MercatoStreamBroker
from app.strategies.taskiq_claim import SlotClaimer
from app.strategies.taskiq_store import ScheduleStore, schedule_of
from app.strategies.taskiq_sync import Maintenance

log = logging.getLogger("mercato.source")

UTC = UTC
#: Slots listed ahead of now. taskiq applies a refresh one tick after it starts it, so the list
#: must already hold the slots of the next two ticks: an every-second schedule fires every second.
HORIZON = timedelta(seconds=3)
MAX_SLOTS_PER_SCHEDULE = 10
#: A next slot this far in the past should have been claimed already (its claim gave up, or
#: Redis was just rebuilt): offer it to taskiq again under a fresh id every ``RETRY_EVERY``.
OVERDUE = timedelta(seconds=2)
RETRY_EVERY = 5


def _later_slots(spec: str, first: datetime, now: datetime) -> list[datetime]:
    try:
        return schedule_of(spec).slots_between(max(first, now), now + HORIZON, limit=MAX_SLOTS_PER_SCHEDULE)
    except Exception as exc:  # one unreadable entry must not stop the others; its claim records why
        log.warning("cannot read the timing of a schedule in Redis (%s): %s", spec, exc)
        return []


# ----- the taskiq schedule source ------------------------------------------------------------


class MercatoScheduleSource(ScheduleSource):
    """Used by ``taskiq scheduler`` (``mercato worker scheduler``) processes."""

    def __init__(
        self,
        settings: Settings,
        broker: MercatoStreamBroker,
        *,
        runtime: Services | None = None,
        connect: Callable[[Settings], Services] | None = None,
    ) -> None:
        """``runtime``: the services to use; or ``connect``, which makes them at startup (the
        composition root passes ``Runtime.create``) and they are closed at shutdown."""
        if runtime is None and connect is None:
            raise ValueError("give the source its services (runtime) or how to make them (connect)")
        self.settings = settings
        self.broker = broker
        self._own_runtime = runtime is None
        self._connect = connect
        self.runtime = runtime
        self.store: ScheduleStore | None = None
        self.claimer: SlotClaimer | None = None
        self._maintenance: Maintenance | None = None
        self._heartbeat: Heartbeat | None = None
        #: The tasks of the last listing, by (schedule id, slot, retry round).
        self._listed: dict[tuple[str, datetime, int], ScheduledTask] = {}

    def connect(self) -> None:
        """Open the database and Redis (``startup`` does this; tests call it alone)."""
        if self.runtime is None:
            assert self._connect is not None  # __init__ wants one or the other
            self.runtime = self._connect(self.settings)
        self.store = ScheduleStore(Redis.from_url(self.settings.redis_url))
        self.claimer = SlotClaimer(self.runtime, self.store, self.broker)

    def _connected(self) -> tuple[Services, ScheduleStore, SlotClaimer]:
        """What ``connect`` made."""
        if self.runtime is None or self.store is None or self.claimer is None:
            raise RuntimeError("the schedule source is not connected (startup connects it)")
        return self.runtime, self.store, self.claimer

    async def startup(self) -> None:
        self.connect()
        runtime, store, _ = self._connected()
        await ensure_cleanup_schedule(runtime.scheduler)
        self._maintenance = Maintenance(runtime, store, self.broker)
        await self._maintenance.start()
        self._heartbeat = Heartbeat(runtime, ProcessKind.ASYNC_SCHEDULER)
        await self._heartbeat.start()

    async def shutdown(self) -> None:
        if self._heartbeat:
            await self._heartbeat.stop()
        if self._maintenance:
            await self._maintenance.stop()
        if self.store:
            await self.store.redis.aclose()  # type: ignore[attr-defined]  # the redis stubs predate aclose (redis 5)
        if self.runtime and self._own_runtime:
            await self.runtime.close()

    async def get_schedules(self) -> list[ScheduledTask]:
        runtime, store, _ = self._connected()
        now = runtime.clock()
        listed: dict[tuple[str, datetime, int], ScheduledTask] = {}
        slot_lists: dict[tuple[str, datetime], list[datetime]] = {}
        for job_id, first, spec in await store.upcoming(now + HORIZON):
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
                        task_name=RUN_TASK,
                        labels={},
                        args=[],
                        kwargs={"job_id": job_id, "slot": slot.isoformat()},
                        schedule_id=schedule_id,
                        time=slot,
                    )
                listed[key] = task
        # The same slot is listed for a few ticks before it is due: its task is made once. The
        # refresh runs in the scheduler's event loop beside the sends of the tick, so the time
        # it takes delays them (ten thousand schedules a minute list some 700 slots a tick).
        self._listed = listed
        return list(listed.values())

    async def pre_send(self, task: ScheduledTask) -> None:
        slot = datetime.fromisoformat(task.kwargs["slot"])
        _, _, claimer = self._connected()
        claimed = await claimer.claim(task.kwargs["job_id"], slot)
        if claimed is None:
            raise ScheduledTaskCancelledError  # another scheduler has it, or it may not fire
        run_id, stream = claimed
        # What goes on the stream is the run, not the slot: mercato.run(run_id).
        task.kwargs = {"run_id": run_id}
        task.task_id = run_id
        task.labels = {**task.labels, "queue_name": stream}

    async def post_send(self, task: ScheduledTask) -> None:
        # The message is on the stream: the run no longer waits to be sent again (SEND_GRACE).
        _, _, claimer = self._connected()
        if task.task_id is not None:  # pre_send made it the run's id
            await claimer.sent(task.task_id, task.labels["queue_name"])
