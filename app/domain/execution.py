"""The execution path shared by both strategies: one run, from queued to its recorded outcome.

``RunExecution`` is what the path works with, typed and built once per process by the
composition root (``runtime.execution``). The path itself is in two parts:

- ``app.domain.starting``: runs are started (``queued -> running``, one statement for both the
  local poller's takes and a worker's deliveries) and prepared in batches, then each target
  runs (``run_target``);
- ``app.domain.outcomes``: the outcomes of runs that end together are written in one
  transaction (``record_outcomes``), with retries per policy, events, and the leases that
  running runs hold (renewed by ``LeaseKeeper``, settled by ``settle_lost_runs``).

The run row follows the real life of the job: ``queued -> running -> succeeded | failed |
timed_out | cancelled`` or ``skipped`` with a reason (or ``queued -> cancelled``).

A cancel request reaches a running target through ``RunningTargets``: the targets running in
this process, by run id (see ``app.domain.cancelling``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.clock import Clock
from app.domain.events import EventBus
from app.domain.hooks import SchedulerHooks
from app.domain.registry import TargetRegistry
from app.domain.run_logs import RunLogs
from app.settings import Settings

#: A running run's lease; the process running it renews it while the target runs.
LEASE = timedelta(seconds=60)


class RunningTargets:
    """The targets running in this process, by run id, with the task each runs in: where a
    cancel request reaches a target (``cancel`` makes its ``await`` raise ``CancelledError``)."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[object] | None] = {}
        #: Run id -> who asked, for the runs whose task was cancelled on request.
        self._cancelled: dict[str, str] = {}

    def enter(self, run_id: str) -> None:
        self._tasks[run_id] = asyncio.current_task()

    def leave(self, run_id: str) -> str | None:
        """The target has ended; who cancelled it on request (None: nobody)."""
        self._tasks.pop(run_id, None)
        return self._cancelled.pop(run_id, None)

    def cancelled_by(self, run_id: str) -> str | None:
        return self._cancelled.get(run_id)

    def ids(self) -> list[str]:
        return list(self._tasks)

    def cancel(self, requests: dict[str, str]) -> list[str]:
        """Cancel the tasks of the runs in ``requests`` (run id -> who asked) that run here
        and were not cancelled yet; returns their ids."""
        cancelled = []
        for run_id, who in requests.items():
            task = self._tasks.get(run_id)
            if task is None or run_id in self._cancelled:
                continue
            self._cancelled[run_id] = who
            task.cancel()
            cancelled.append(run_id)
        return cancelled


@dataclass(frozen=True)
class RunExecution:
    """What the execution path uses: the database, the targets, the clock, where events go,
    the hooks that hear of retries queued, and the run logs of the runs in flight. It is also what a target sees of the
    application (``TargetContext.data``: sessions, settings, clock)."""

    sessions: async_sessionmaker[AsyncSession]
    registry: TargetRegistry
    settings: Settings
    clock: Clock
    events: EventBus
    hooks: SchedulerHooks
    logs: RunLogs
    #: The targets running in this process (the cancel watcher in ``LeaseKeeper`` reaches them).
    running: RunningTargets = field(default_factory=RunningTargets)
