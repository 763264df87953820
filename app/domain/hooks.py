"""How the domain tells the running strategy that something changed.

The local poller wakes up; the async strategy syncs Redis and sends queued runs to workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SchedulerHooks(Protocol):
    async def schedules_changed(self, job_ids: Sequence[str]) -> None: ...

    async def runs_queued(self, run_ids: Sequence[str]) -> None: ...


class NoHooks:
    async def schedules_changed(self, job_ids: Sequence[str]) -> None:
        return None

    async def runs_queued(self, run_ids: Sequence[str]) -> None:
        return None


class HookList:
    """Several listeners behind one ``SchedulerHooks``."""

    def __init__(self) -> None:
        self._hooks: list[SchedulerHooks] = []

    def add(self, hooks: SchedulerHooks) -> None:
        self._hooks.append(hooks)

    def remove(self, hooks: SchedulerHooks) -> None:
        if hooks in self._hooks:
            self._hooks.remove(hooks)

    async def schedules_changed(self, job_ids: Sequence[str]) -> None:
        for hooks in list(self._hooks):
            await hooks.schedules_changed(job_ids)

    async def runs_queued(self, run_ids: Sequence[str]) -> None:
        for hooks in list(self._hooks):
            await hooks.runs_queued(run_ids)
