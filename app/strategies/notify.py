"""PostgreSQL ``LISTEN/NOTIFY``: a change made by one process wakes the pollers of the others."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("mercato.notify")
CHANNEL = "mercato_scheduler"


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgNotifications:
    """Listens on the channel and calls ``on_notify``; reconnects with backoff when the link drops."""

    def __init__(self, database_url: str, on_notify: Callable[[], None]) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.on_notify = on_notify
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("LISTEN connection failed: %s; retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)
                continue
            backoff = 0.5
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            try:
                await conn.add_listener(CHANNEL, lambda *_: self.on_notify())
                # Something may have changed while we were not listening.
                self.on_notify()
                await lost.wait()
            finally:
                if not conn.is_closed():
                    await conn.close()


class PgNotifier:
    """SchedulerHooks that sends a NOTIFY after every change."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def schedules_changed(self, job_ids: Sequence[str]) -> None:
        await self._notify()

    async def runs_queued(self, run_ids: Sequence[str]) -> None:
        await self._notify()

    async def _notify(self) -> None:
        from sqlalchemy import text

        try:
            async with self.engine.begin() as conn:
                await conn.execute(text(f"NOTIFY {CHANNEL}"))
        except Exception as exc:  # a lost wake-up only costs one poll interval
            log.warning("NOTIFY failed: %s", exc)
