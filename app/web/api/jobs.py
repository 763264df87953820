"""``/api/scheduler/jobs``: schedules. Each handler translates HTTP and calls one service function."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import quote

from litestar import Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.exceptions import ClientException
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from msgspec import UNSET

from app.domain.errors import Conflict
from app.domain.listing import SORTS, JobQuery
from app.persistence.models import ScheduledJob
from app.web.api.problems import PreconditionFailed, errors
from app.web.api.schemas import (
    AuditEntry,
    AuditTrail,
    DisableInput,
    Job,
    JobCreate,
    JobPage,
    JobPatch,
    Run,
    RunStatus,
    ScheduleType,
    Scope,
    SourceType,
    TargetType,
    TriggerInput,
)
from app.web.auth import require, runtime_of

BASE = "/api/scheduler"
ETAG = [
    ResponseHeader(
        name="ETag", description='The schedule\'s version, e.g. "3"; send it back in If-Match.', documentation_only=True
    )
]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description='Change only if the schedule is still at this version (its ETag, e.g. "3"); 412 otherwise.',
    ),
]
JobId = FromPath[str]
Sort: TypeAlias = Literal[tuple(SORTS)]  # type: ignore[valid-type]
_VERSION_TAG = re.compile(r'\s*(?:W/)?(?:"(\d{1,9})"|(\d{1,9}))\s*')


def job_location(job_id: str) -> str:
    return f"{BASE}/jobs/{quote(job_id, safe=':@')}"


def job_response(job: ScheduledJob, status_code: int = 200, headers: dict[str, str] | None = None) -> Response[Job]:
    return Response(Job.of(job), status_code=status_code, headers={"ETag": f'"{job.version}"', **(headers or {})})


def expected_version(if_match: str | None, body_version: int | None = None) -> int | None:
    """The version the caller expects, from ``If-Match`` or the body; None: no precondition."""
    header = None
    if if_match is not None and if_match.strip() != "*":
        match = _VERSION_TAG.fullmatch(if_match)
        if match is None:
            raise ClientException('If-Match must be one version, like "3" (the ETag of the schedule)')
        header = int(match.group(1) or match.group(2))
    if header is not None and body_version is not None and header != body_version:
        raise ClientException("If-Match and version disagree; send one of them")
    return header if header is not None else body_version


async def conditional(call: Awaitable[ScheduledJob], expected: int | None) -> ScheduledJob:
    """Run a change; with a precondition, a version conflict is 412 (otherwise it stays 409)."""
    try:
        return await call
    except Conflict as exc:
        if expected is not None:
            raise PreconditionFailed(str(exc)) from None
        raise


@get("/jobs", summary="List schedules", responses=errors(400, 401, 403, 422))
async def list_jobs(
    request: Request[Any, Any, Any],
    page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, QueryParameter(name="pageSize", ge=1, le=100)] = 25,
    search: Annotated[
        str | None, QueryParameter(max_length=200, description="Part of the name, description or id.")
    ] = None,
    scope_type: Annotated[Scope | None, QueryParameter(name="scopeType")] = None,
    is_enabled: Annotated[bool | None, QueryParameter(name="isEnabled")] = None,
    schedule_type: Annotated[ScheduleType | None, QueryParameter(name="scheduleType")] = None,
    target_type: Annotated[TargetType | None, QueryParameter(name="targetType")] = None,
    source_type: Annotated[SourceType | None, QueryParameter(name="sourceType")] = None,
    source_module: Annotated[str | None, QueryParameter(name="sourceModule", max_length=100)] = None,
    last_status: Annotated[RunStatus | None, QueryParameter(name="lastStatus")] = None,
    sort: FromQuery[Sort] = "name",
    order: FromQuery[Literal["asc", "desc"]] = "asc",
) -> JobPage:
    """The schedules you can see, filtered, sorted and paged."""
    query = JobQuery(
        search=search,
        scope_type=scope_type,
        is_enabled=is_enabled,
        schedule_type=schedule_type,
        target_type=target_type,
        source_type=source_type,
        source_module=source_module,
        last_status=last_status,
        sort=sort,
        order=order,
        page=page,
        page_size=page_size,
    )
    result = await runtime_of(request).scheduler.list(query, require(request))
    return JobPage([Job.of(j) for j in result.items], result.total, result.page, result.page_size, result.total_exact)


@post(
    "/jobs",
    summary="Create a schedule",
    status_code=201,
    response_headers=[
        *ETAG,
        ResponseHeader(name="Location", description="The new schedule's URL.", documentation_only=True),
    ],
    responses=errors(400, 401, 403, 413, 422),
)
async def create_job(request: Request[Any, Any, Any], data: JSONBody[JobCreate]) -> Response[Job]:
    job = await runtime_of(request).scheduler.create(data.given(), require(request))
    return job_response(job, 201, {"Location": job_location(job.id)})


@get("/jobs/{job_id:str}", summary="Get a schedule", response_headers=ETAG, responses=errors(400, 401, 403, 404))
async def get_job(request: Request[Any, Any, Any], job_id: JobId) -> Response[Job]:
    return job_response(await runtime_of(request).scheduler.get(job_id, require(request)))


@patch(
    "/jobs/{job_id:str}",
    summary="Change a schedule",
    response_headers=ETAG,
    responses=errors(400, 401, 403, 404, 409, 412, 413, 422),
)
async def update_job(
    request: Request[Any, Any, Any], job_id: JobId, data: JSONBody[JobPatch], if_match: IfMatch = None
) -> Response[Job]:
    """Only the fields sent change. With `If-Match` (or `version`) the change applies only to
    that version of the schedule: 412 if someone changed it since."""
    expected = expected_version(if_match, None if data.version is UNSET else data.version)
    service = runtime_of(request).scheduler
    job = await conditional(service.update(job_id, data.given(), require(request), expected_version=expected), expected)
    return job_response(job)


@delete("/jobs/{job_id:str}", summary="Delete a schedule", responses=errors(400, 401, 403, 404, 409, 412))
async def delete_job(request: Request[Any, Any, Any], job_id: JobId, if_match: IfMatch = None) -> None:
    """Soft delete: it never fires again; its history stays and `undo` brings it back."""
    expected = expected_version(if_match)
    service = runtime_of(request).scheduler
    await conditional(service.delete(job_id, require(request), expected_version=expected), expected)


@post(
    "/jobs/{job_id:str}/enable",
    summary="Enable a schedule",
    status_code=200,
    response_headers=ETAG,
    responses=errors(400, 401, 403, 404, 409, 412),
)
async def enable_job(request: Request[Any, Any, Any], job_id: JobId, if_match: IfMatch = None) -> Response[Job]:
    expected = expected_version(if_match)
    service = runtime_of(request).scheduler
    job = await conditional(service.enable(job_id, require(request), expected_version=expected), expected)
    return job_response(job)


@post(
    "/jobs/{job_id:str}/disable",
    summary="Disable (pause) a schedule",
    status_code=200,
    response_headers=ETAG,
    responses=errors(400, 401, 403, 404, 409, 412, 422),
)
async def disable_job(
    request: Request[Any, Any, Any], job_id: JobId, data: JSONBody[DisableInput | None] = None, if_match: IfMatch = None
) -> Response[Job]:
    """Pause with an optional `note` (at most 500 characters) saying why."""
    expected = expected_version(if_match)
    service = runtime_of(request).scheduler
    note = data.note if data else None
    return job_response(
        await conditional(service.disable(job_id, require(request), note, expected_version=expected), expected)
    )


@post(
    "/jobs/{job_id:str}/trigger",
    summary="Run a schedule now",
    status_code=202,
    response_headers=[ResponseHeader(name="Location", description="The run's URL.", documentation_only=True)],
    responses=errors(400, 401, 403, 404, 413, 422),
)
async def trigger_job(
    request: Request[Any, Any, Any], job_id: JobId, data: JSONBody[TriggerInput | None] = None
) -> Response[Run]:
    """Queue a manual run; the running scheduler (either strategy) starts it at once. An optional
    body `{"payload": {...}}` is the run's input instead of the schedule's payload; the run
    records the payload it runs with."""
    payload = data.payload if data else None
    run = await runtime_of(request).scheduler.trigger(job_id, require(request), payload)
    return Response(Run.of(run), status_code=202, headers={"Location": f"{BASE}/runs/{run.id}"})


@get("/jobs/{job_id:str}/audit", summary="A schedule's change history", responses=errors(400, 401, 403, 404, 422))
async def job_audit(
    request: Request[Any, Any, Any], job_id: JobId, limit: Annotated[int, QueryParameter(ge=1, le=100)] = 100
) -> AuditTrail:
    """Every change (create, update, enable, disable, delete, undo), newest first."""
    entries = await runtime_of(request).scheduler.audit_trail(job_id, require(request), limit=limit)
    return AuditTrail([AuditEntry.of(e) for e in entries])


@post(
    "/jobs/{job_id:str}/undo",
    summary="Undo the last change",
    status_code=200,
    response_headers=ETAG,
    responses=errors(400, 401, 403, 404, 409, 422),
)
async def undo_job(request: Request[Any, Any, Any], job_id: JobId) -> Response[Job]:
    """Revert the schedule to how it was before its last change (a delete too)."""
    return job_response(await runtime_of(request).scheduler.undo(job_id, require(request)))


routes = [
    list_jobs,
    create_job,
    get_job,
    update_job,
    delete_job,
    enable_job,
    disable_job,
    trigger_job,
    job_audit,
    undo_job,
]
