"""The chaos runs' target: it writes one ledger line per execution, so a slot run twice shows.

The run rows say what the scheduler *decided*; the ledger says what really *ran*. Each process
appends to a file of its own with one ``os.write`` on an ``O_APPEND`` descriptor: the line is in
the kernel the moment the call returns, so a process SIGKILLed a microsecond later still leaves
it behind.

Processes started by ``tests.support.chaos`` get the target through a ``sitecustomize`` module
(see ``Fleet``): taskiq's worker children import only the broker module, and the target must
exist in every process that may run it. The test process registers it in a registry of its own
(``chaos_registry``), so the process-wide one that other tests list stays as shipped.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from app.domain.registry import TargetContext, TargetRegistry

COMMAND = "chaos.record"
LEDGER_ENV = "MERCATO_CHAOS_LEDGER"
_fd: tuple[int, int] | None = None  # (pid, descriptor): a forked child opens a file of its own


async def record(payload: dict, ctx: TargetContext) -> dict:
    directory = os.environ.get(LEDGER_ENV)
    if directory:
        line = f"{ctx.job_id}\t{ctx.slot.isoformat()}\t{ctx.attempt}\t{ctx.run_id}\t{os.getpid()}\n"
        os.write(_ledger(directory), line.encode())
    delay = payload.get("sleep") or 0
    if isinstance(delay, (int, float)) and delay > 0:
        await asyncio.sleep(float(delay))
    return {"pid": os.getpid()}


def _ledger(directory: str) -> int:
    global _fd
    pid = os.getpid()
    if _fd is None or _fd[0] != pid:
        path = Path(directory) / f"ledger-{pid}.tsv"
        _fd = (pid, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
    return _fd[1]


def register(registry: TargetRegistry) -> None:
    registry.command(
        COMMAND,
        label="Chaos: record the execution",
        schedulable=True,
        description="Writes one ledger line per execution (job, slot, attempt, run, pid); optional 'sleep'.",
    )(record)


def chaos_registry() -> TargetRegistry:
    """A registry holding only the chaos target (for the process that creates the schedules)."""
    registry = TargetRegistry()
    register(registry)
    return registry


SITECUSTOMIZE = f"""\
import os
if os.environ.get({LEDGER_ENV!r}):
    from app.domain.registry import registry
    from tests.support.chaos_targets import register
    register(registry)
"""


@dataclass(frozen=True)
class Execution:
    job_id: str
    slot: datetime
    attempt: int
    run_id: str
    pid: int


def read_ledger(directory: Path) -> list[Execution]:
    executions = []
    for path in sorted(directory.glob("ledger-*.tsv")):
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 5:  # a torn last line cannot happen with one write, but never trust chaos
                executions.append(
                    Execution(parts[0], datetime.fromisoformat(parts[1]), int(parts[2]), parts[3], int(parts[4]))
                )
    return executions


def executions_per_slot(executions: list[Execution]) -> Counter:
    return Counter((e.job_id, e.slot) for e in executions)
