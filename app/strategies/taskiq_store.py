"""What the async strategy keeps in Redis: each schedule's next slot and timing definition.

Redis holds what can be rebuilt from the database: a sorted set of schedule ids scored by their
next slot (epoch seconds, the database's ``next_run_at``) and a hash of each schedule's timing
definition. The schedule source reads it, the sync writes it, the claim advances it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Row

from app import engine
from app.persistence.models import ScheduledJob

UTC = UTC


@dataclass(frozen=True)
class Entry:
    job_id: str
    next_at: datetime
    spec: str  # the timing definition, canonical JSON


def entry_for(job: ScheduledJob | Row[Any]) -> Entry | None:
    """The Redis entry a schedule (or a row of its columns) should have; None when it must not fire."""
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
    return engine.parse_schedule(
        data["type"],
        data["value"],
        data["tz"],
        anchor=_instant(data["anchor"]),
        start_at=_instant(data["start"]),
        end_at=_instant(data["end"]),
        min_interval_seconds=1,
    )


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ScheduleStore:
    """The Redis layout: ``<prefix>:due`` (sorted set) and ``<prefix>:defs`` (hash)."""

    def __init__(self, redis: Redis[bytes], prefix: str = "mercato:schedules") -> None:
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
        # The stubs type zrange's bounds as int; with byscore they are scores ("-inf", floats).
        scored = await self.redis.zrange(  # type: ignore[call-overload]
            self.due_key, "-inf", until.timestamp(), byscore=True, withscores=True
        )
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
