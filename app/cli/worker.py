"""``mercato worker``: the async strategy's processes (taskiq worker and taskiq scheduler)."""

from __future__ import annotations

import asyncio
import logging
import os

import click

from app.cli.runner import fail
from app.settings import SettingsError, get_settings


def _require_async() -> None:
    try:
        settings = get_settings()
    except SettingsError as exc:
        fail(str(exc))
    if settings.queue_strategy != "async":
        fail(
            "workers belong to the async strategy: set QUEUE_STRATEGY=async "
            "(with QUEUE_STRATEGY=local, `mercato scheduler start` or `mercato serve` runs the targets)"
        )


@click.group()
def worker() -> None:
    """Async strategy (QUEUE_STRATEGY=async): taskiq workers and schedulers."""


@worker.command("start", context_settings={"ignore_unknown_options": True})
@click.option(
    "--workers", "-w", type=click.IntRange(1, 256), default=2, show_default=True, help="Worker child processes."
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    metavar="NAME",
    help="Work only these queue targets' streams (repeatable). Default: commands and every queue.",
)
@click.option(
    "--max-async-tasks",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Runs in flight per child process.",
)
@click.argument("taskiq_args", nargs=-1, type=click.UNPROCESSED)
def start(workers: int, queues: tuple[str, ...], max_async_tasks: int, taskiq_args: tuple[str, ...]) -> None:
    """Run `taskiq worker` with the project's broker; extra arguments go to taskiq."""
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import run_worker

    from app.taskiq_app import QUEUES_ENV

    _require_async()
    os.environ[QUEUES_ENV] = ",".join(queues)  # read by the child processes' broker
    args = WorkerArgs.from_cli(
        [
            "app.taskiq_app:broker",
            "--workers",
            str(workers),
            "--max-async-tasks",
            str(max_async_tasks),
            *taskiq_args,
        ]
    )
    raise SystemExit(run_worker(args) or 0)


@worker.command("scheduler")
def scheduler() -> None:
    """Run a taskiq scheduler over the Redis schedule source until Ctrl+C / SIGTERM.

    Any number may run: the database decides which of them fires a slot.
    """
    _require_async()
    # taskiq logs every send at INFO; our claim log says the same once per tick.
    logging.getLogger("taskiq.cli.scheduler.run").setLevel(logging.WARNING)
    logging.getLogger("taskiq.scheduler.scheduler").setLevel(logging.WARNING)
    from app.taskiq_app import run_scheduler
    from app.taskiq_app import scheduler as taskiq_scheduler

    asyncio.run(run_scheduler(taskiq_scheduler))
