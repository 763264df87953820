"""The objects the taskiq CLI imports, built from the environment's settings (a composition
root, like ``app.runtime``: the worker and the schedule source make their services with
``Runtime.create`` once their process runs).

    mercato worker start       = taskiq worker app.taskiq_app:broker
    mercato worker scheduler   ~ taskiq scheduler app.taskiq_app:scheduler --update-interval 1

``mercato worker scheduler`` runs taskiq's own ``SchedulerLoop`` with this scheduler, but
re-reads the source on every tick: the stock CLI only takes whole seconds for
``--update-interval`` and skips a refresh whenever a tick lands a little earlier in its second
than the one before, which can make a brand-new schedule fire a second late.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import timedelta

from taskiq import TaskiqScheduler
from taskiq.cli.scheduler.run import SchedulerLoop

from app.runtime import Runtime
from app.settings import Settings, get_settings
from app.strategies.taskiq_broker import COMMAND_STREAM, MercatoStreamBroker, build_broker, queue_stream
from app.strategies.taskiq_source import MercatoScheduleSource
from app.strategies.taskiq_worker import serve_runs

log = logging.getLogger("mercato.scheduler")

#: Set by ``mercato worker start --queue NAME`` for its child processes: the queues to work.
QUEUES_ENV = "MERCATO_WORKER_QUEUES"
UPDATE_EVERY = timedelta(milliseconds=500)  # less than a tick: every tick refreshes


def _streams() -> list[str] | None:
    queues = [q for q in os.environ.get(QUEUES_ENV, "").split(",") if q]
    return [queue_stream(q) for q in queues] or None


def build_scheduler(settings: Settings, broker: MercatoStreamBroker | None = None) -> TaskiqScheduler:
    broker = broker or build_broker(settings, streams=[COMMAND_STREAM])
    return TaskiqScheduler(broker, [MercatoScheduleSource(settings, broker, connect=Runtime.create)])


settings = get_settings()
broker = serve_runs(build_broker(settings, streams=_streams()), settings, Runtime.create)
scheduler = build_scheduler(settings, broker)


async def run_scheduler(scheduler: TaskiqScheduler) -> None:
    """Run taskiq's scheduler loop until SIGINT/SIGTERM."""
    scheduler.broker.is_scheduler_process = True
    for source in scheduler.sources:
        await source.startup()
    await scheduler.startup()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None  # awaited, so inside a task
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    log.info("scheduler started (async strategy)")
    try:
        await SchedulerLoop(scheduler).run(update_interval=UPDATE_EVERY, loop_interval=timedelta(seconds=1))
    except asyncio.CancelledError:
        pass
    finally:
        # Finish the sends under way: their runs are claimed and marked sent already.
        sending = [t for t in asyncio.all_tasks() if t.get_name().startswith("schedule_")]
        if sending:
            await asyncio.wait(sending, timeout=10)
        await scheduler.shutdown()
        for source in scheduler.sources:
            await source.shutdown()
        log.info("scheduler stopped")
