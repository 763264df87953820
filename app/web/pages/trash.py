"""The Deleted view: deleted schedules, newest deletion first, each restored with one click.

A page of its own rather than a filter of the list: a deleted schedule has other facts (who
deleted it, when it is purged) and one action (Restore), where the list's are run, pause, edit
and delete. Restoring is a plain form POST answered by a redirect with a flash, from this page
or from the deleted schedule's own (read-only) page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from app.domain.actors import VIEW
from app.domain.errors import Conflict, ValidationError
from app.domain.trash import TrashQuery, purge_at
from app.persistence.models import ScheduledJob
from app.web.auth import require, runtime_of
from app.web.formatting import SCOPE_LABELS, STATUS_LABELS, TimeFormat
from app.web.login import HOME
from app.web.pages.flash import Flash
from app.web.pages.listing import PAGE_SIZES, pager
from app.web.pages.responses import int_param, job_url, query_string, redirect, render, return_to, wants_block

DELETED = f"{HOME}/deleted"


@dataclass(frozen=True)
class TrashState:
    """The search and page of the Deleted view; it round-trips through the query string."""

    q: str = ""
    page: int = 1
    size: int = 25

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrashState:
        size = int_param(params.get("size"), 25, maximum=100)
        return cls(
            q=str(params.get("q") or "").strip()[:200],
            page=int_param(params.get("page"), 1, maximum=100_000),
            size=size if size in PAGE_SIZES else 25,
        )

    def url(self, **changes: Any) -> str:
        state = {"q": self.q, "page": 1, "size": self.size, **changes}
        return DELETED + query_string({k: v for k, v in state.items() if v != getattr(TrashState(), k)})


@get(DELETED, name="jobs.deleted")
async def deleted_list(request: Request[Any, Any, Any]) -> Response[Any]:
    actor = require(request, VIEW)
    runtime = runtime_of(request)
    state = TrashState.from_params(request.query_params)
    page = await runtime.scheduler.deleted(TrashQuery(state.q or None, state.page, state.size), actor)
    retention = runtime.settings.scheduler_trash_retention_days
    context = {
        "state": state,
        "page": page,
        "pager": pager(page),
        "retention_days": retention,
        "purge_at": lambda job: purge_at(job, retention),
        "scope_labels": SCOPE_LABELS,
        "status_labels": STATUS_LABELS,
        "deleted_url": DELETED,
    }
    if wants_block(request, "deleted-table"):
        return render(
            request, "jobs/deleted.html", context, block="table", headers={"HX-Push-Url": state.url(page=state.page)}
        )
    return render(request, "jobs/deleted.html", context)


@post(f"{HOME}/{{job_id:str}}/restore", name="jobs.restore")
async def restore(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor = require(request)
    form = await request.form()
    back = return_to(form.get("return_to"), job_url(job_id))
    try:
        job = await runtime_of(request).scheduler.restore(job_id, actor)
    except Conflict as exc:  # restored (or made again) by someone else meanwhile
        return redirect(request, back, Flash(f"Not restored: {exc}.", "error"))
    except ValidationError as exc:
        return redirect(request, back, Flash(f"Not restored: {'; '.join(exc.errors.values())}.", "error"))
    link = None if back == job_url(job_id) else (job_url(job_id), "Open it")
    return redirect(request, back, Flash(f"Restored “{job.name}”. {_next(request, job)}", link=link))


def _next(request: Request[Any, Any, Any], job: ScheduledJob) -> str:
    if not job.is_enabled:
        return "It is still disabled, as it was when it was deleted."
    if job.next_run_at is None:
        return "It has no more runs (the schedule has ended)."
    return f"Next run: {TimeFormat(runtime_of(request).clock()).local(job.next_run_at, job.timezone)}."


routes = [deleted_list, restore]
