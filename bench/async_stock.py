"""The stock taskiq setup the async benchmark compares against (not used by the product).

``TaskiqScheduler`` + ``ListRedisScheduleSource`` + ``RedisStreamBroker``, as the taskiq-redis
documentation sets them up. Its one task records when it ran, so lag and duplicates can be
counted::

    taskiq scheduler bench.async_stock:scheduler --update-interval 1
    taskiq worker bench.async_stock:broker --workers 1
"""

from __future__ import annotations

import json
import os
import time

from redis.asyncio import Redis
from taskiq import TaskiqScheduler
from taskiq_redis import ListRedisScheduleSource, RedisStreamBroker

REDIS_URL = os.environ.get("BENCH_STOCK_REDIS_URL", "redis://127.0.0.1:6379/10")
RUNS_KEY = "bench:stock:runs"

broker = RedisStreamBroker(REDIS_URL, queue_name="bench:stock", maxlen=100_000)
source = ListRedisScheduleSource(REDIS_URL, prefix="bench:stock:schedules")
scheduler = TaskiqScheduler(broker, [source])


@broker.task(task_name="bench.record")
async def record(slot: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.rpush(RUNS_KEY, json.dumps({"slot": slot, "at": time.time()}))
    finally:
        await redis.aclose()
