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
timed_out`` or ``skipped`` with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
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
