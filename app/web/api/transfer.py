"""``/api/scheduler/export`` and ``/api/scheduler/import``: the YAML files of ``app.domain.transfer``."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody
from litestar.params import QueryParameter

from app.domain import transfer
from app.domain.actors import MANAGE
from app.settings import MAX_IMPORT_BYTES_LIMIT
from app.web.api.problems import errors
from app.web.api.schemas import ImportItem, ImportResult, ScheduleFile, Scope
from app.web.auth import require, runtime_of

YAML = "application/yaml"


@get("/export", summary="Export schedules as YAML", media_type=YAML, responses=errors(400, 401, 403, 422))
async def export_schedules(
    request: Request[Any, Any, Any],
    scope_type: Annotated[Scope | None, QueryParameter(name="scopeType")] = None,
    tenant_id: Annotated[str | None, QueryParameter(name="tenantId", max_length=64)] = None,
) -> Response[ScheduleFile]:
    """Every schedule you can see (optionally one scope type or tenant), in the import format."""
    text = await transfer.export_schedules(
        runtime_of(request).scheduler, require(request), scope_type=scope_type, tenant_id=tenant_id
    )
    download = {"Content-Disposition": 'attachment; filename="schedules.yaml"'}
    # The body is a ScheduleFile's YAML text; the return annotation documents that schema in OpenAPI.
    return Response(text, media_type=YAML, headers=download)  # type: ignore[arg-type]


class _YamlBody(Operation):
    # The body is read raw (YAML, parsed by the domain), so Litestar cannot describe it by itself;
    # it has the shape of the export (the ScheduleFile schema).
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="A document as written by /export (JSON, being YAML too, is accepted).",
            content={YAML: OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{ScheduleFile.__name__}"))},
        )


@post(
    "/import",
    summary="Import schedules from YAML",
    status_code=200,
    # The body is read by the handler, after the permission check, up to the setting's limit;
    # this is only the outer bound (the largest limit the setting accepts).
    request_max_body_size=MAX_IMPORT_BYTES_LIMIT,
    operation_class=_YamlBody,
    responses=errors(400, 401, 403, 413, 422),
)
async def import_schedules(
    request: Request[Any, Any, Any],
    dry_run: Annotated[bool, QueryParameter(name="dryRun", description="Only report what would change.")] = False,
) -> ImportResult:
    """Upsert by id, all or nothing: every schedule is validated first; any error changes nothing
    and answers 422 with `errors` keyed `schedules[i].field`. Needs `scheduler.jobs.manage`
    (checked before the file is read); a file over the server's import limit answers 413."""
    actor, scheduler = require(request, MANAGE), runtime_of(request).scheduler
    body = await _read_capped(request, scheduler.settings.scheduler_max_import_bytes)
    plan = await transfer.import_schedules(scheduler, body, actor, dry_run=dry_run)
    return ImportResult(
        dry_run=plan.dry_run,
        items=[ImportItem(job_id, action) for job_id, action in plan.items],  # type: ignore[arg-type]
        created=plan.count("create"),
        updated=plan.count("update"),
        unchanged=plan.count("unchanged"),
    )


async def _read_capped(request: Request[Any, Any, Any], max_bytes: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed ``max_bytes``: from its
    Content-Length before reading, else once the bytes read pass the limit."""
    if (request.content_length or 0) > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(status_code=413, detail=str(transfer.FileTooLarge(max_bytes).errors["file"]))


routes = [export_schedules, import_schedules]
