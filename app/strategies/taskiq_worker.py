"""Worker side of the async strategy: the ``mercato.run`` task and the middleware around it.

``RunLifecycle.pre_execute`` starts the run (``queued -> running``, a conditional UPDATE); a
message for a run that is already running or finished (redelivered after a worker died, or
resent) starts nothing. The task then runs the target through the shared execution path and
records the outcome, error, stack and duration on the run row. A worker takes many messages at
once: the starts of those that arrive together are one transaction, and so are their outcomes.
While a run is in flight the middleware renews its lease; if the worker dies, the lease runs
out and the scheduler process marks the run failed and retries it per the schedule's policy
(``settle_lost_runs``).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from taskiq import AsyncBroker, Context, TaskiqDepends, TaskiqMessage, TaskiqMiddleware, TaskiqResult

from app.domain.batching import Coalescer
from app.domain.execution import RunExecution
from app.domain.heartbeats import Heartbeat, ProcessKind
from app.domain.outcomes import EndedRun, LeaseKeeper, RecordedOutcome, record_outcomes
from app.domain.services import Services
from app.domain.starting import StartedRun, run_target, start_runs
from app.settings import Settings
from app.strategies.taskiq_broker import RUN_TASK

log = logging.getLogger("mercato.worker")
B = TypeVar("B", bound=AsyncBroker)

#: Set on the message by the middleware: did this delivery start the run?
STARTED_LABEL = "mercato_started"


class RunLifecycle(TaskiqMiddleware):
    def __init__(self, settings: Settings, connect: Callable[[Settings], Services]) -> None:
        """``connect`` makes the worker process's services after the fork (the composition
        root passes ``Runtime.create``)."""
        super().__init__()
        self.settings = settings
        self.connect = connect
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.runtime: Services | None = None
        self._in_flight: set[str] = set()
        self._prepared: dict[str, StartedRun] = {}
        self._starter: Coalescer[str, StartedRun | None] = Coalescer(
            lambda run_ids: start_runs(self._execution(), run_ids, worker=self.worker)
        )
        self._recorder: Coalescer[EndedRun, RecordedOutcome] = Coalescer(
            lambda finishes: record_outcomes(self._execution(), finishes)
        )
        self._leases: LeaseKeeper | None = None
        self._heartbeat: Heartbeat | None = None

    async def startup(self) -> None:
        if not self.broker.is_worker_process:
            return  # a process that only sends (scheduler, web) runs nothing
        self.worker = f"{socket.gethostname()}:{os.getpid()}"  # after the fork
        self.runtime = self.connect(self.settings)
        self.broker.state.runtime = self.runtime
        self.broker.state.lifecycle = self
        self._leases = LeaseKeeper(self.runtime.execution, lambda: list(self._in_flight))
        self._leases.start()
        self._heartbeat = Heartbeat(self.runtime, ProcessKind.WORKER, lambda: len(self._in_flight))
        await self._heartbeat.start()

    async def shutdown(self) -> None:
        if self._heartbeat:
            await self._heartbeat.stop()
        if self._leases:
            await self._leases.stop()
        if self.runtime:
            await self.runtime.close()

    def _execution(self) -> RunExecution:
        if self.runtime is None:
            raise RuntimeError("the worker's services are made at startup, in a worker process")
        return self.runtime.execution

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        run_id = message.kwargs.get("run_id")
        prepared = await self._starter.submit(run_id) if isinstance(run_id, str) else None
        message.labels[STARTED_LABEL] = prepared is not None
        if isinstance(run_id, str) and prepared is not None:
            self._in_flight.add(run_id)
            self._prepared[run_id] = prepared
        else:
            log.info("run %s is not queued any more (delivered twice?); not starting it again", run_id)
        return message

    async def execute(self, run_id: str) -> RecordedOutcome | None:
        """Run the target of a run this worker started, and record its outcome."""
        prepared = self._prepared.pop(run_id, None)
        if prepared is None:
            return None
        finish = await run_target(self._execution(), prepared)
        return await self._recorder.submit((prepared.run, prepared.job, finish))

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        run_id = message.kwargs.get("run_id")
        if isinstance(run_id, str):
            self._prepared.pop(run_id, None)
            self._in_flight.discard(run_id)
        if result.is_err:
            # execute() records every target failure itself; this is the path around it
            # (database gone while recording). The lease runs out and the run is settled.
            log.error("run %s crashed outside its target: %s", message.kwargs.get("run_id"), result.error)


async def run_job(run_id: str, context: Context = TaskiqDepends()) -> str:
    """Run one started run to its end; the returned status is for logs, the row is the record."""
    outcome = await context.state.lifecycle.execute(run_id) if context.message.labels.get(STARTED_LABEL) else None
    return outcome.status if outcome else "not started"


def serve_runs(broker: B, settings: Settings, connect: Callable[[Settings], Services]) -> B:
    """Make ``broker`` a worker's: the run task, and the middleware that starts, runs and
    records each run."""
    broker.add_middlewares(RunLifecycle(settings, connect))
    broker.register_task(run_job, task_name=RUN_TASK)
    return broker
