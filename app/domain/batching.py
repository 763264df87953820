"""Coalescing: many concurrent callers, one database round trip per batch.

While one batch is being written the next one gathers; nothing waits on a timer. Used where
each run would otherwise cost a transaction of its own: recording outcomes (both strategies)
and starting runs in a taskiq worker, which receives its messages one at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """``await submit(item)`` returns ``write(batch)[i]`` for the item's place ``i`` in its batch.

    ``write`` takes up to ``limit`` items and returns one result per item, in order. If it
    raises, every caller of that batch gets the exception; the next batch is tried anew.
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]], *, limit: int = 500) -> None:
        self._write = write
        self.limit = limit
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.limit], self._pending[self.limit :]
                try:
                    results = await self._write([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise ValueError(f"a batch of {len(batch)} gave {len(results)} results")
                except BaseException as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, done), result in zip(batch, results):
                    if not done.done():
                        done.set_result(result)
        finally:
            self._writer = None
            for _, done in self._pending:  # left only if this task was cancelled
                done.cancel()
            self._pending = []
