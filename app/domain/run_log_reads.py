"""Reading a run's log (``app.domain.run_logs`` keeps it): the lines after a cursor, for the
run's view, the API and ``mercato scheduler logs``, which follow a running run by asking again
with the last sequence number they have."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from app.domain.actors import SYSTEM, Actor
from app.domain.errors import ValidationError
from app.domain.listing import owned_visible_to
from app.domain.service import SchedulerService
from app.domain.vocabulary import FINISHED
from app.persistence.models import ScheduledJobRun, ScheduledJobRunLog

#: Lines one read returns at most (and by default).
MAX_LIMIT = 1000
DEFAULT_LIMIT = 500


@dataclass(frozen=True)
class RunLogPage:
    run: ScheduledJobRun
    lines: Sequence[ScheduledJobRunLog]
    #: The cursor for the next read: the last line's sequence number (or the one asked with).
    after: int
    #: The run had finished before these lines were read: once a reader has caught up (fewer
    #: lines than asked for), there is nothing more to wait for.
    finished: bool
    limit: int

    @property
    def complete(self) -> bool:
        """Every line of a finished run has been read."""
        return self.finished and len(self.lines) < self.limit


async def read_run_log(
    scheduler: SchedulerService,
    run_id: str,
    actor: Actor = SYSTEM,
    *,
    job_id: str | None = None,
    after: int = 0,
    limit: int = DEFAULT_LIMIT,
) -> RunLogPage:
    """The lines of a run the actor can see, after sequence number ``after``, oldest first.

    The run is found like ``find_run`` (or ``get_run`` when ``job_id`` is given): outside the
    actor's scope it does not exist. The lines are authorized by their own scope ids as well.
    """
    errors = {}
    if after < 0:
        errors["after"] = "must be 0 or more"
    if not 1 <= limit <= MAX_LIMIT:
        errors["limit"] = f"must be between 1 and {MAX_LIMIT}"
    if errors:
        raise ValidationError(errors)
    # The run's status is read before its lines: a run that had finished then has all its
    # lines written (they are committed with its outcome, or before it).
    run = await (scheduler.get_run(job_id, run_id, actor) if job_id is not None else scheduler.find_run(run_id, actor))
    finished = run.status in FINISHED
    async with scheduler.sessions() as session:
        lines = list(
            await session.scalars(
                sa.select(ScheduledJobRunLog)
                .where(
                    ScheduledJobRunLog.run_id == run.id,
                    ScheduledJobRunLog.seq > after,
                    owned_visible_to(actor, ScheduledJobRunLog.tenant_id, ScheduledJobRunLog.organization_id),
                )
                .order_by(ScheduledJobRunLog.seq)
                .limit(limit)
            )
        )
    return RunLogPage(run, lines, lines[-1].seq if lines else after, finished, limit)
