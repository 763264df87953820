"""The words of a run: its statuses and triggers, and the named sets the code asks about.

``StrEnum`` members are the strings stored in the database and sent in JSON, so a member
compares equal to the value read back from a row.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    MISSED = "missed"
    #: Stopped on request: a queued run that never started, or a running one whose task was
    #: cancelled. Never retried, and not a failure.
    CANCELLED = "cancelled"


class Trigger(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    CATCH_UP = "catch_up"
    RETRY = "retry"


#: A run that has not ended: waiting for its time or a free slot, or running.
ACTIVE: frozenset[RunStatus] = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
#: A run that has ended, whichever way.
FINISHED: frozenset[RunStatus] = frozenset(RunStatus) - ACTIVE
#: The endings a retry follows (a cancelled run is not one of them).
FAILURES: frozenset[RunStatus] = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT})

#: In the order filters and the API's schema list them.
RUN_STATUSES: tuple[str, ...] = tuple(status.value for status in RunStatus)
RUN_TRIGGERS: tuple[str, ...] = tuple(trigger.value for trigger in Trigger)
