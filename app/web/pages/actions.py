"""One schedule's actions: run now, enable, disable (with a note), delete (confirmed), undo.

Each is a plain form POST answered by a redirect with a flash message. "Run now" from the
detail page is enhanced by htmx: the answer is the refreshed run history (the new run polls
itself until it ends) and the flash, swapped in place. "Run now" with a ``payload`` field comes
from the "Run with input" page (``running``): a rejected payload shows that page again.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from app.domain.actors import MANAGE, VIEW
from app.domain.errors import Forbidden, ValidationError
from app.persistence.models import ScheduledJob
from app.web.auth import require, runtime_of
from app.web.formatting import TimeFormat
from app.web.login import HOME
from app.web.pages.detail import history_response
from app.web.pages.flash import Flash
from app.web.pages.responses import job_url, redirect, render, return_to, wants_block
from app.web.pages.running import input_page

ID = "{job_id:str}"


@post(f"{HOME}/{ID}/run", name="jobs.run")
async def run_now(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor = require(request)
    form = await request.form()
    scheduler = runtime_of(request).scheduler
    payload = form.get("payload")
    try:
        run = await scheduler.trigger(job_id, actor, payload)
    except ValidationError as exc:
        job = await scheduler.get(job_id, actor)
        return input_page(request, job, str(payload or ""), errors=exc.errors, status=422)
    job = await scheduler.get(job_id, actor)
    with_input = " with your input" if payload is not None else ""
    message = Flash(f"Queued a run of “{job.name}”{with_input}.", "success", link=(job_url(job_id), "See its history"))
    if wants_block(request, "run-history"):
        # The form sent the history filters along (hx-include): answer page 1 with them.
        filters = {"status": form.get("status"), "trigger": form.get("trigger")}
        return await history_response(
            request, job_id, actor, filters, flashes=[message], highlight=run.id, url_header="HX-Replace-Url"
        )
    return redirect(request, return_to(form.get("return_to"), job_url(job_id)), message)


@post(f"{HOME}/{ID}/enable", name="jobs.enable")
async def enable(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor = require(request)
    form = await request.form()
    job = await runtime_of(request).scheduler.enable(job_id, actor)
    return redirect(
        request,
        return_to(form.get("return_to"), job_url(job_id)),
        Flash(f"Enabled “{job.name}”. Next run: {_next(request, job)}."),
    )


@post(f"{HOME}/{ID}/disable", name="jobs.disable")
async def disable(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor = require(request)
    form = await request.form()
    note = str(form.get("note", ""))
    job = await runtime_of(request).scheduler.disable(job_id, actor, note=note or None)
    return redirect(
        request,
        return_to(form.get("return_to"), job_url(job_id)),
        Flash(f"Disabled “{job.name}”. It will not run until it is enabled again."),
    )


@get(f"{HOME}/{ID}/delete", name="jobs.confirm_delete")
async def confirm_delete(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor = require(request, VIEW)
    job = await runtime_of(request).scheduler.get(job_id, actor)
    if not actor.can(MANAGE):
        raise Forbidden(f"you need the '{MANAGE}' permission")
    back = return_to(request.query_params.get("return_to"), job_url(job_id))
    return render(request, "jobs/confirm_delete.html", {"jobs": [job], "back": back})


@post(f"{HOME}/{ID}/delete", name="jobs.delete")
async def delete(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor = require(request)
    form = await request.form()
    job = await runtime_of(request).scheduler.delete(job_id, actor)
    back = return_to(form.get("return_to"), HOME)
    if back.startswith(job_url(job_id)):
        back = HOME  # the detail page of a deleted schedule is gone
    return redirect(request, back, Flash(f"Deleted “{job.name}”.", undo=[job_id]))


@post(f"{HOME}/{ID}/undo", name="jobs.undo")
async def undo(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor = require(request)
    job = await runtime_of(request).scheduler.undo(job_id, actor)
    return redirect(request, job_url(job_id), Flash(f"Undone: “{job.name}” is back to its previous version."))


def _next(request: Request[Any, Any, Any], job: ScheduledJob) -> str:
    if job.next_run_at is None:
        return "none (the schedule has ended)"
    return TimeFormat(runtime_of(request).clock()).local(job.next_run_at, job.timezone)


routes = [run_now, enable, disable, confirm_delete, delete, undo]
