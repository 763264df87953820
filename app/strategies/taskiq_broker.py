"""The async strategy's taskiq broker: Redis streams, acknowledged after the run.

One task, ``mercato.run(run_id)``, carries every run. Command targets go to the shared stream;
a queue target goes to its own stream, read by the workers of that queue (``mercato worker start
--queue NAME``), so a queue's work lands on its queue worker. The run row in PostgreSQL, not the
message, is the unit of exactly-once: a message delivered twice starts nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from app.domain.batching import Coalescer
from app.domain.registry import TargetRegistry
from app.domain.registry import registry as default_registry
from app.settings import Settings

log = logging.getLogger("mercato.taskiq")

RUN_TASK = "mercato.run"
COMMAND_STREAM = "mercato:runs"
CONSUMER_GROUP = "mercato-workers"
#: Trimmed beyond this many entries. A backlog larger than this loses messages, which the
#: scheduler resends (their runs are still ``queued`` in the database).
STREAM_MAXLEN = 100_000


def queue_stream(queue: str) -> str:
    return f"mercato:queue:{queue}"


def stream_for(target_type: str, target_queue: str | None) -> str:
    return queue_stream(target_queue) if target_type == "queue" and target_queue else COMMAND_STREAM


class MercatoStreamBroker(RedisStreamBroker):
    """``RedisStreamBroker`` that survives Redis losing its consumer group (restart, FLUSHALL).

    Without this a worker's XREADGROUP fails with NOGROUP forever after a flush. It also sends
    and acknowledges through one client instead of building a ``Redis`` object per message,
    which cost more CPU than the XADD itself at a few hundred messages a second, and the sends
    (acknowledgements) that arrive together go to Redis as one pipeline: taskiq hands the
    broker one message at a time, and a burst is thousands of them.
    """

    _client: Redis[bytes] | None = None
    _sender: Coalescer[tuple[str, bytes], Any] | None = None
    _acker: Coalescer[tuple[str, str], Any] | None = None

    def client(self) -> Redis[bytes]:
        """One client for every send and acknowledgement (the connection pool is shared)."""
        if self._client is None:
            self._client = Redis(connection_pool=self.connection_pool)
        return self._client

    async def kick(self, message: BrokerMessage) -> None:
        if self._sender is None:
            self._sender = Coalescer(self._add_many)
        await self._sender.submit((message.labels.get("queue_name") or self.queue_name, message.message))

    async def _add_many(self, messages: list[tuple[str, bytes]]) -> list[Any]:
        async with self.client().pipeline(transaction=False) as pipe:
            for stream, data in messages:
                pipe.xadd(stream, {b"data": data}, maxlen=self.maxlen, approximate=self.approximate)
            results: list[Any] = await pipe.execute()
            return results

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            if self._acker is None:
                self._acker = Coalescer(self._ack_many)
            await self._acker.submit((queue_name, id))

        return ack

    async def _ack_many(self, acks: list[tuple[str, str]]) -> list[None]:
        by_stream: dict[str, list[str]] = {}
        for stream, message_id in acks:
            by_stream.setdefault(stream, []).append(message_id)
        async with self.client().pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, self.consumer_group_name, *ids)
            await pipe.execute()
        return [None] * len(acks)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        while True:
            try:
                async for message in self._read():
                    yield message
            except ResponseError as exc:
                # NOGROUP: the group is gone; UNBLOCKED: the stream went while we were reading it.
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                log.warning("Redis lost the stream or its consumer group (flushed?); declaring them again")
                await self._declare_consumer_group()

    async def _read(self) -> AsyncGenerator[AckableMessage, None]:
        """taskiq-redis's read loop, except that messages a dead worker had taken are claimed on
        every round. Its loop looks for them only after a read that brought new messages, so on
        a quiet stream they waited for the next message to arrive (or for the 10-minute resend)."""
        streams = {self.queue_name: ">", **self.additional_streams}
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                fetched = await redis.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    streams,
                    block=self.block,
                    noack=False,
                    count=self.count,
                )
                for stream, messages in fetched or []:
                    for message_id, fields in messages:
                        yield AckableMessage(data=fields[b"data"], ack=self._ack_generator(message_id, stream))
                for stream in streams:
                    # Idle longer than WORKER_REDELIVERY_SECONDS: its worker is gone. XAUTOCLAIM
                    # hands each such message to exactly one of the workers asking.
                    _, claimed, *_ = await redis.xautoclaim(
                        stream,
                        self.consumer_group_name,
                        self.consumer_name,
                        min_idle_time=self.idle_timeout,
                        count=self.unacknowledged_batch_size,
                    )
                    for message_id, fields in claimed:
                        if fields:  # None: trimmed from the stream meanwhile
                            yield AckableMessage(data=fields[b"data"], ack=self._ack_generator(message_id, stream))


def build_broker(
    settings: Settings, *, streams: Iterable[str] | None = None, registry: TargetRegistry = default_registry
) -> MercatoStreamBroker:
    """The project's broker, for sending; ``streams`` are what a worker reads (default: every
    stream of the registry's targets). ``taskiq_worker.serve_runs`` makes it a worker's."""
    wanted = list(streams) if streams is not None else [COMMAND_STREAM, *known_queue_streams(registry)]
    broker = MercatoStreamBroker(
        url=settings.broker_redis_url,
        queue_name=wanted[0],
        additional_streams={s: ">" for s in wanted[1:]},
        consumer_group_name=CONSUMER_GROUP,
        # A group created after messages arrived (first deploy, after a flush) reads them too.
        consumer_id="0",
        maxlen=STREAM_MAXLEN,
        idle_timeout=settings.worker_redelivery_seconds * 1000,
        unacknowledged_lock_timeout=10,
        xread_block=1000,
    )
    return broker


def known_queue_streams(registry: TargetRegistry) -> list[str]:
    return [queue_stream(t.name) for t in registry.schedulable("queue")]


async def send_run(broker: AsyncBroker, run_id: str, stream: str) -> None:
    """Put one run on its stream; the taskiq task id is the run id."""
    await run_kicker(broker, stream).with_task_id(run_id).kiq(run_id=run_id)


def run_kicker(broker: AsyncBroker, stream: str, labels: dict[str, Any] | None = None) -> AsyncKicker[..., Any]:
    return AsyncKicker(RUN_TASK, broker, {**(labels or {}), "queue_name": stream})
