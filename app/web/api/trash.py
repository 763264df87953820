"""The trash: ``GET /api/scheduler/trash`` (deleted schedules) and ``POST .../jobs/{id}/restore``."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, QueryParameter

from app.domain.trash import TrashQuery
from app.web.api.jobs import ETAG, job_response
from app.web.api.problems import errors
from app.web.api.schemas import DeletedJob, DeletedJobPage, Job
from app.web.auth import require, runtime_of


@get("/trash", summary="List deleted schedules", responses=errors(400, 401, 403, 422))
async def list_trash(
    request: Request[Any, Any, Any],
    search: Annotated[str | None, QueryParameter(max_length=200, description="Part of the name or id.")] = None,
    page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, QueryParameter(name="pageSize", ge=1, le=100)] = 25,
) -> DeletedJobPage:
    """The deleted schedules you can see, newest deletion first. Each is kept until `purgeAt`
    (`SCHEDULER_TRASH_RETENTION_DAYS` after its deletion) and can be restored until then."""
    runtime = runtime_of(request)
    result = await runtime.scheduler.deleted(TrashQuery(search, page, page_size), require(request))
    days = runtime.settings.scheduler_trash_retention_days
    return DeletedJobPage(
        [DeletedJob.deleted(job, days) for job in result.items],
        result.total,
        result.page,
        result.page_size,
        result.total_exact,
    )


@post(
    "/jobs/{job_id:str}/restore",
    summary="Restore a deleted schedule",
    status_code=200,
    response_headers=ETAG,
    responses=errors(400, 401, 403, 404, 409, 422),
)
async def restore_job(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Job]:
    """Bring a deleted schedule back as it was when deleted (a paused one stays paused); its next
    slot is the first after now. 409 if it is not deleted; 422 (naming the field) if it could
    not be made today: its target is gone or not schedulable in its scope, or its tenant or
    organization no longer exists."""
    return job_response(await runtime_of(request).scheduler.restore(job_id, require(request)))


routes = [list_trash, restore_job]
