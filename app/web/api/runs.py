"""Run history: a schedule's runs (filtered, paged), every run across schedules, one run in full,
and cancelling a run."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter

from app.domain.errors import ValidationError
from app.domain.listing import RunQuery
from app.domain.run_listing import (
    MAX_PAGE,
    MOMENT_HELP,
    AllRunsQuery,
    aware_moment,
    browse_runs,
    check_range,
    parse_moment,
)
from app.domain.run_log_reads import DEFAULT_LIMIT, MAX_LIMIT, read_run_log
from app.web.api.problems import errors
from app.web.api.schemas import AllRunsPage, Run, RunLog, RunPage, RunStatus, RunSummary, RunTrigger
from app.web.auth import require, runtime_of


@get("/jobs/{job_id:str}/runs", summary="A schedule's runs", responses=errors(400, 401, 403, 404, 422))
async def job_runs(
    request: Request[Any, Any, Any],
    job_id: FromPath[str],
    status: Annotated[RunStatus | None, QueryParameter()] = None,
    trigger: Annotated[RunTrigger | None, QueryParameter()] = None,
    since: Annotated[
        datetime | None,
        QueryParameter(name="from", description="Only runs whose slot is at or after this instant (ISO 8601)."),
    ] = None,
    until: Annotated[
        datetime | None,
        QueryParameter(name="to", description="Only runs whose slot is before this instant (ISO 8601, with offset)."),
    ] = None,
    page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, QueryParameter(name="pageSize", ge=1, le=100)] = 25,
) -> RunPage:
    """Newest first. A deleted schedule keeps its history, so this answers for it too."""
    since, until = _aware(since, "from"), _aware(until, "to")
    if since and until and until <= since:
        raise ValidationError({"to": "must be after 'from'"})
    query = RunQuery(status=status, trigger=trigger, since=since, until=until, page=page, page_size=page_size)
    result = await runtime_of(request).scheduler.runs(job_id, query, require(request))
    return RunPage(
        [RunSummary.of(r) for r in result.items], result.total, result.page, result.page_size, result.total_exact
    )


@get("/runs", summary="Every run you can see", responses=errors(400, 401, 403, 422))
async def all_runs(
    request: Request[Any, Any, Any],
    status: Annotated[RunStatus | None, QueryParameter()] = None,
    trigger: Annotated[RunTrigger | None, QueryParameter()] = None,
    job_id: Annotated[
        str | None, QueryParameter(name="jobId", max_length=200, description="Exactly this schedule.")
    ] = None,
    search: Annotated[
        str | None, QueryParameter(max_length=200, description="Part of the schedule's name or id.")
    ] = None,
    tenant_id: Annotated[str | None, QueryParameter(name="tenantId", max_length=64)] = None,
    organization_id: Annotated[str | None, QueryParameter(name="organizationId", max_length=64)] = None,
    since: Annotated[
        str | None,
        QueryParameter(max_length=64, description=f"Runs created at or after: {MOMENT_HELP}."),
    ] = None,
    until: Annotated[
        str | None, QueryParameter(max_length=64, description=f"Runs created before: {MOMENT_HELP}.")
    ] = None,
    page: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, QueryParameter(name="pageSize", ge=1, le=100)] = 25,
) -> AllRunsPage:
    """Newest first, across schedules (deleted ones too: their history stays), with the counts by
    status for the same filters. Counting stops at 10,000 per status."""
    runtime = runtime_of(request)
    now = runtime.clock()
    start = parse_moment(since, now, name="since") if since else None
    end = parse_moment(until, now, name="until") if until else None
    check_range(start, end)
    query = AllRunsQuery(
        status=status,
        trigger=trigger,
        job_id=job_id,
        search=search,
        tenant_id=tenant_id,
        organization_id=organization_id,
        since=start,
        until=end,
        page=page,
        page_size=page_size,
    )
    return AllRunsPage.of(await browse_runs(runtime, query, require(request)))


@get("/runs/{run_id:str}", summary="One run", responses=errors(400, 401, 403, 404))
async def get_run(request: Request[Any, Any, Any], run_id: FromPath[str]) -> Run:
    """Everything recorded about a run, including the error stack and the target's result."""
    return Run.of(await runtime_of(request).scheduler.find_run(run_id, require(request)))


@post(
    "/runs/{run_id:str}/cancel",
    summary="Cancel a run",
    status_code=200,
    responses=errors(400, 401, 403, 404, 409),
)
async def cancel_run(request: Request[Any, Any, Any], run_id: FromPath[str]) -> Run:
    """A queued run is cancelled at once and never starts (`status` is `cancelled`). A running
    run stays `running`, with `cancelRequestedAt`, until the process running it cancels its task
    (within 2 s); it then ends `cancelled` and is not retried. A finished run: 409."""
    return Run.of((await runtime_of(request).scheduler.cancel_run(run_id, require(request))).run)


@get("/runs/{run_id:str}/logs", summary="A run's log lines", responses=errors(400, 401, 403, 404, 422))
async def get_run_logs(
    request: Request[Any, Any, Any],
    run_id: FromPath[str],
    after: Annotated[
        int, QueryParameter(ge=0, le=2**31 - 1, description="Only lines after this sequence number (a cursor).")
    ] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> RunLog:
    """What the run's target logged (``ctx.log``), oldest first. To follow a running run, ask
    again with ``after=nextAfter`` until ``complete`` is true."""
    page = await read_run_log(runtime_of(request).scheduler, run_id, require(request), after=after, limit=limit)
    return RunLog.of(page)


def _aware(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else aware_moment(value, name)


routes = [job_runs, all_runs, get_run, get_run_logs, cancel_run]
