"""The targets registry: modules declare queue workers and commands here.

Only targets declared with ``schedulable=True`` can be scheduled or triggered, by any path, and
only in the scopes they declare (``scopes``; every scope by default): a target that reaches
across tenants, like the history cleanup, is declared ``scopes={"system"}``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.domain.access import DataAccess
from app.domain.actors import SCOPES, Actor

Handler = Callable[[dict[str, Any], "TargetContext"], Awaitable[Any]]


@dataclass(frozen=True)
class TargetContext:
    """What a target receives beside its payload."""

    job_id: str
    run_id: str
    slot: datetime
    trigger: str
    attempt: int
    #: The schedule's scope: a target that reads or writes stored data stays inside it (a
    #: tenant schedule's run touches that tenant's data only; organization: that organization's).
    scope_type: str
    tenant_id: str | None
    organization_id: str | None
    #: The acting user: the schedule's creator, the user of a manual run, or "system".
    acting_user: str
    #: Stable per run: a queue worker can use it to ignore a message it has already handled.
    idempotency_key: str
    #: The database, settings and clock, for a target that reads or writes stored data: it
    #: stays inside the scope above (see the README's rule for module authors).
    data: DataAccess | None = None
    #: Where the target writes what it wants people to read about this run: a standard
    #: ``logging.Logger`` (at level INFO) whose lines are kept with the run, shown in its view,
    #: by ``GET /api/scheduler/runs/{runId}/logs`` and by ``mercato scheduler logs``.
    #: Called directly (in a test), a target logs to the ``mercato.targets`` logger.
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("mercato.targets"))


@dataclass(frozen=True)
class Target:
    kind: str  # "queue" | "command"
    name: str
    handler: Handler
    label: str
    description: str = ""
    payload_hint: dict[str, Any] = field(default_factory=dict)
    schedulable: bool = False
    #: The scopes a schedule of this target may have.
    scopes: frozenset[str] = frozenset(SCOPES)

    def allows(self, scope_type: str | None) -> bool:
        """Whether a schedule of ``scope_type`` may run this target."""
        return self.schedulable and scope_type in self.scopes


def schedulable_scopes(actor: Actor) -> frozenset[str]:
    """The scopes ``actor`` may make schedules in (see ``ownership.check_actor_scope``)."""
    if actor.is_superadmin:
        return frozenset(SCOPES)
    if actor.tenant_id is None:
        return frozenset()
    return frozenset({"tenant", "organization"})


class TargetRegistry:
    def __init__(self) -> None:
        self._targets: dict[tuple[str, str], Target] = {}

    def queue(
        self,
        name: str,
        *,
        label: str,
        description: str = "",
        payload_hint: Mapping[str, Any] | None = None,
        schedulable: bool = False,
        scopes: Iterable[str] = SCOPES,
    ) -> Callable[[Handler], Handler]:
        """Decorator: declare ``handler(payload, ctx)`` as the worker of queue ``name``."""
        return self._declare("queue", name, label, description, payload_hint, schedulable, scopes)

    def command(
        self,
        name: str,
        *,
        label: str,
        description: str = "",
        payload_hint: Mapping[str, Any] | None = None,
        schedulable: bool = False,
        scopes: Iterable[str] = SCOPES,
    ) -> Callable[[Handler], Handler]:
        """Decorator: declare ``handler(payload, ctx)`` as command ``name``."""
        return self._declare("command", name, label, description, payload_hint, schedulable, scopes)

    def _declare(
        self,
        kind: str,
        name: str,
        label: str,
        description: str,
        payload_hint: Mapping[str, Any] | None,
        schedulable: bool,
        scopes: Iterable[str],
    ) -> Callable[[Handler], Handler]:
        allowed = frozenset(scopes)
        if not allowed or not allowed <= set(SCOPES):
            raise ValueError(f"{kind} {name!r}: scopes must be a non-empty set of {', '.join(SCOPES)}")

        def decorator(handler: Handler) -> Handler:
            if not inspect.iscoroutinefunction(handler):
                raise TypeError(f"{kind} {name!r}: handler must be an async function")
            if (kind, name) in self._targets:
                raise ValueError(f"{kind} {name!r} is already registered")
            self._targets[(kind, name)] = Target(
                kind, name, handler, label, description, dict(payload_hint or {}), schedulable, allowed
            )
            return handler

        return decorator

    def get(self, kind: str, name: str | None) -> Target | None:
        return self._targets.get((kind, name or ""))

    def schedulable(self, kind: str | None = None, *, scopes: Iterable[str] | None = None) -> list[Target]:
        """Schedulable targets (of ``kind``), only those allowed in one of ``scopes`` if given."""
        wanted = None if scopes is None else frozenset(scopes)
        return sorted(
            (
                t
                for t in self._targets.values()
                if t.schedulable and (kind is None or t.kind == kind) and (wanted is None or t.scopes & wanted)
            ),
            key=lambda t: (t.kind, t.label.lower()),
        )


#: The process-wide registry; modules declare their targets on import.
registry = TargetRegistry()
