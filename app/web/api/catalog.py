"""What a schedule can point at (targets) and what a schedule means (preview)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import QueryParameter

from app import engine
from app.domain.actors import VIEW
from app.domain.errors import ValidationError
from app.domain.fieldnames import camel
from app.domain.registry import schedulable_scopes
from app.web.api.problems import errors
from app.web.api.schemas import Preview, ScheduleType, Target, TargetList
from app.web.auth import require, runtime_of


@get("/targets", summary="Schedulable targets", responses=errors(401, 403))
async def targets(request: Request[Any, Any, Any]) -> TargetList:
    """The queues and commands you may schedule, with labels, an example payload and the scopes
    a schedule of each may have (a target allowed only in scopes you cannot manage is not listed)."""
    allowed = schedulable_scopes(require(request, VIEW))
    schedulable = runtime_of(request).registry.schedulable(scopes=allowed)
    return TargetList(
        [
            Target(t.kind, t.name, t.label, t.description, dict(t.payload_hint), sorted(t.scopes & allowed))
            for t in schedulable
        ]
    )


@get("/preview", summary="Describe a schedule and list its next slots", responses=errors(400, 401, 403, 422))
async def preview(
    request: Request[Any, Any, Any],
    schedule_value: Annotated[str, QueryParameter(name="scheduleValue", min_length=1, max_length=200)],
    schedule_type: Annotated[ScheduleType, QueryParameter(name="scheduleType")] = "cron",
    timezone: Annotated[str, QueryParameter(min_length=1, max_length=64)] = "UTC",
    count: Annotated[int, QueryParameter(ge=1, le=100)] = 5,
) -> Preview:
    """Validates like saving would: an invalid schedule answers 422 naming the field."""
    require(request, VIEW)
    runtime = runtime_of(request)
    try:
        result = engine.preview(
            schedule_type,
            schedule_value,
            timezone,
            after=runtime.clock(),
            count=count,
            min_interval_seconds=runtime.settings.scheduler_min_interval_seconds,
        )
    except engine.ScheduleError as exc:
        raise ValidationError({camel(exc.field): exc.message}) from None
    return Preview(schedule_type, schedule_value.strip(), timezone, result.description, result.slots)


routes = [targets, preview]
