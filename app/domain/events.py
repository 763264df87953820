"""The event bus modules subscribe to: ``scheduler.job.started|completed|failed|skipped|cancelled``.

Every event has the same payload shape in both strategies (see ``RunEvent``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger("mercato.events")

STARTED = "scheduler.job.started"
COMPLETED = "scheduler.job.completed"
FAILED = "scheduler.job.failed"
SKIPPED = "scheduler.job.skipped"
#: A run stopped on request: emitted by the process that cancelled a queued run, or by the one
#: whose running target was cancelled.
CANCELLED = "scheduler.job.cancelled"
EVENT_NAMES = (STARTED, COMPLETED, FAILED, SKIPPED, CANCELLED)


@dataclass(frozen=True)
class RunEvent:
    name: str
    job_id: str
    run_id: str
    slot: datetime
    trigger: str
    attempt: int
    tenant_id: str | None
    organization_id: str | None
    status: str
    at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    reason: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}


Subscriber = Callable[[RunEvent], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def subscribe(self, name: str, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` for every event ``name`` (or ``*`` for all); returns an unsubscribe function."""
        if name != "*" and name not in EVENT_NAMES:
            raise ValueError(f"unknown event {name!r}; one of {', '.join(EVENT_NAMES)} or '*'")
        self._subscribers.setdefault(name, []).append(subscriber)
        return lambda: self._subscribers[name].remove(subscriber)

    def wants(self, name: str) -> bool:
        """Whether anyone listens to ``name``: events nobody hears are not even built."""
        return bool(self._subscribers.get(name) or self._subscribers.get("*"))

    async def emit(self, event: RunEvent) -> None:
        # A broken subscriber must not break the run that emitted the event.
        for subscriber in [*self._subscribers.get(event.name, ()), *self._subscribers.get("*", ())]:
            try:
                await subscriber(event)
            except Exception:
                log.exception("event subscriber failed", extra={"event": event.name, "run_id": event.run_id})
