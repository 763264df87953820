"""Run history: a schedule's runs (filtered, paged) and one run in full."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import FromPath, QueryParameter

from app.domain.errors import ValidationError
from app.domain.instants import accepted_instant
from app.domain.listing import RunQuery
from app.domain.run_log_reads import DEFAULT_LIMIT, MAX_LIMIT, read_run_log
from app.web.api.problems import errors
from app.web.api.schemas import Run, RunLog, RunPage, RunStatus, RunSummary, RunTrigger
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


@get("/runs/{run_id:str}", summary="One run", responses=errors(400, 401, 403, 404))
async def get_run(request: Request[Any, Any, Any], run_id: FromPath[str]) -> Run:
    """Everything recorded about a run, including the error stack and the target's result."""
    return Run.of(await runtime_of(request).scheduler.find_run(run_id, require(request)))


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
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationError({name: "give a timezone offset, e.g. 2026-06-01T00:00:00Z"})
    try:
        return accepted_instant(value)
    except ValueError as exc:
        raise ValidationError({name: str(exc)}) from None


routes = [job_runs, get_run, get_run_logs]
