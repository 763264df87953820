"""Is anything firing? The health banner's verdict, computed from heartbeats and due rows.

Two questions, two indexed queries:

1. Does a live process fire slots for the configured strategy? Local: the poller of a
   ``mercato serve`` or a ``mercato scheduler start``. Async: a ``mercato worker scheduler``
   (it fires) and a ``mercato worker start`` (it runs what was fired); both are needed.
2. Is work waiting longer than ``SCHEDULER_OVERDUE_SECONDS``: an enabled, live schedule whose
   next slot is that old (nobody claims it), or a queued run whose time came that long ago
   (nobody starts it)? Asked within the caller's scope: nobody learns about another tenant's
   schedules from the banner.

Nothing is configured: a healthy setup has no problems, and the banner does not show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.actors import Actor
from app.domain.heartbeats import COMMANDS, ProcessKind, live_counts
from app.domain.listing import owned_visible_to, visible_to
from app.domain.services import Services
from app.domain.vocabulary import RunStatus
from app.persistence.models import ScheduledJob, ScheduledJobRun


class ProblemCode(StrEnum):
    NO_POLLER = "no-poller"
    NO_ASYNC_SCHEDULER = "no-async-scheduler"
    NO_WORKER = "no-worker"
    SLOTS_OVERDUE = "slots-overdue"
    RUNS_OVERDUE = "runs-overdue"


@dataclass(frozen=True)
class Problem:
    code: ProblemCode
    #: What is wrong, in a sentence.
    message: str
    #: The command that fixes it, when one does.
    command: str | None
    #: What else to know or try, in a sentence (may be empty).
    hint: str = ""
    #: The oldest overdue slot or run (overdue problems only).
    since: datetime | None = None


@dataclass(frozen=True)
class Health:
    strategy: str
    live: dict[ProcessKind, int]
    problems: list[Problem] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


async def assess(services: Services, actor: Actor) -> Health:
    """The health of the scheduler as ``actor`` may see it."""
    settings = services.settings
    now = services.clock()
    overdue_before = now - timedelta(seconds=settings.scheduler_overdue_seconds)
    async with services.sessions() as session:
        live = await live_counts(session, now, settings.scheduler_heartbeat_seconds)
        oldest_slot, oldest_run = await _overdue(session, overdue_before, actor)
    problems = _missing(settings.queue_strategy, live)
    minutes = _duration(settings.scheduler_overdue_seconds)
    if oldest_slot is not None:
        problems.append(
            Problem(
                ProblemCode.SLOTS_OVERDUE,
                f"Schedules are due for more than {minutes} and no scheduler has fired them.",
                *_overdue_fix(settings.queue_strategy, problems, ProcessKind.ASYNC_SCHEDULER),
                since=oldest_slot,
            )
        )
    if oldest_run is not None:
        problems.append(
            Problem(
                ProblemCode.RUNS_OVERDUE,
                f"Queued runs have waited more than {minutes} to start.",
                *_overdue_fix(settings.queue_strategy, problems, ProcessKind.WORKER),
                since=oldest_run,
            )
        )
    return Health(settings.queue_strategy, live, problems)


def _missing(strategy: str, live: dict[ProcessKind, int]) -> list[Problem]:
    if strategy == "local":
        if live[ProcessKind.EMBEDDED] or live[ProcessKind.POLLER]:
            return []
        return [
            Problem(
                ProblemCode.NO_POLLER,
                "No scheduler is running: no slot fires and no run starts.",
                COMMANDS[ProcessKind.POLLER],
                "Or run mercato serve without --no-scheduler.",
            )
        ]
    problems = []
    if not live[ProcessKind.ASYNC_SCHEDULER]:
        problems.append(
            Problem(
                ProblemCode.NO_ASYNC_SCHEDULER,
                "No taskiq scheduler is running: no slot fires.",
                COMMANDS[ProcessKind.ASYNC_SCHEDULER],
            )
        )
    if not live[ProcessKind.WORKER]:
        problems.append(
            Problem(
                ProblemCode.NO_WORKER,
                "No worker is running: fired slots and manual runs stay queued.",
                COMMANDS[ProcessKind.WORKER],
            )
        )
    return problems


def _overdue_fix(strategy: str, missing: list[Problem], needed: ProcessKind) -> tuple[str | None, str]:
    """The command and hint of an overdue problem."""
    if missing:
        verb = "start" if needed == ProcessKind.WORKER else "fire"
        return None, f"Nothing that could {verb} them is running (see above)."
    if strategy == "async" and needed == ProcessKind.WORKER:
        return (
            COMMANDS[ProcessKind.WORKER],
            "The workers are busy, or none works these runs' queue (without --queue a worker works every queue).",
        )
    return None, "The running processes are not keeping up or cannot reach the database: see their logs."


def _duration(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


async def _overdue(session: AsyncSession, before: datetime, actor: Actor) -> tuple[datetime | None, datetime | None]:
    """The oldest due slot and the oldest startable queued run older than ``before``, in scope.

    One statement; each half reads a partial index (``ix_scheduled_jobs_due``,
    ``ix_scheduled_job_runs_active``).
    """
    slot = (
        sa.select(sa.func.min(ScheduledJob.next_run_at))
        .where(
            ScheduledJob.is_enabled,
            ScheduledJob.deleted_at.is_(None),
            ScheduledJob.next_run_at <= before,
            visible_to(actor),
        )
        .scalar_subquery()
    )
    run = (
        sa.select(sa.func.min(ScheduledJobRun.not_before))
        .where(
            ScheduledJobRun.status == RunStatus.QUEUED,
            ScheduledJobRun.not_before <= before,
            owned_visible_to(actor, ScheduledJobRun.tenant_id, ScheduledJobRun.organization_id),
        )
        .scalar_subquery()
    )
    oldest_slot, oldest_run = (await session.execute(sa.select(slot, run))).one()
    return oldest_slot, oldest_run
