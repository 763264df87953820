"""Runs on request: run with input ("Run with input…", "Run again…") and cancelling a run.

"Run with input…" is a small page with the payload as JSON, prefilled with the schedule's payload
or, for "Run again…", with the payload a run ran with; it posts to the schedule's "run" action
(``actions.run_now``), which answers a rejected payload with this page again (422), the message
next to the field and the text kept. "Cancel" on a queued or running run is a form that posts
(htmx answers the run's row; without JavaScript a redirect with a flash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from app.domain.actors import TRIGGER, VIEW, Actor
from app.domain.errors import Conflict, Forbidden
from app.domain.vocabulary import FINISHED
from app.persistence.models import ScheduledJob
from app.web.auth import require, runtime_of
from app.web.formatting import pretty_json
from app.web.login import HOME
from app.web.pages.detail import run_context
from app.web.pages.flash import Flash
from app.web.pages.responses import job_url, redirect, render, wants_block

ID = "{job_id:str}"


@dataclass(frozen=True)
class InputForm:
    """What the page's one field holds, and its error (the form macros read these two)."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def input_page(
    request: Request[Any, Any, Any],
    job: ScheduledJob,
    payload_text: str,
    *,
    errors: dict[str, str] | None = None,
    source: Any = None,
    status: int = 200,
) -> Response[Any]:
    """The "Run with input" page: ``payload_text`` in the field, ``errors`` next to it."""
    form = InputForm({"payload": payload_text}, errors or {})
    context = {"job": job, "form": form, "source": source, "action": job_url(job.id, "/run")}
    return render(request, "jobs/run_input.html", context, status=status)


@get(f"{HOME}/{ID}/run", name="jobs.run_input")
async def run_input(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    """``?run=<id>``: "Run again", prefilled with the payload that run ran with."""
    actor = require(request, VIEW)
    scheduler = runtime_of(request).scheduler
    job = await scheduler.get(job_id, actor)
    _require_trigger(actor)
    source = None
    run_id = request.query_params.get("run")
    if run_id:
        source = await scheduler.get_run(job_id, str(run_id), actor)
    # A scheduled run recorded no payload: it ran with the schedule's, shown as it is now.
    payload = source.payload if source is not None and source.payload is not None else job.target_payload
    return input_page(request, job, pretty_json(payload or {}), source=source)


@post(f"{HOME}/{ID}/runs/{{run_id:str}}/cancel", name="jobs.cancel_run")
async def cancel_run(request: Request[Any, Any, Any], job_id: FromPath[str], run_id: FromPath[str]) -> Response[Any]:
    actor = require(request)
    scheduler = runtime_of(request).scheduler
    try:
        outcome = await scheduler.cancel_run(run_id, actor, job_id=job_id)
        message = Flash(
            "Cancelled the run before it started."
            if outcome.stopped
            else "Asked to cancel the run: it stops within a couple of seconds."
        )
    except Conflict as exc:
        message = Flash(str(exc), "error")
    if wants_block(request, f"run-{run_id}"):
        run = await scheduler.get_run(job_id, run_id, actor)
        job = await scheduler.get(job_id, actor)
        # A run that has ended here refreshes the status panel, as its own polling would.
        ended = {"HX-Trigger": "runFinished"} if run.status in FINISHED else None
        return render(request, "jobs/_run.html", {"job": job, "run": run, **run_context()}, headers=ended, partial=True)
    return redirect(request, job_url(job_id), message)


def _require_trigger(actor: Actor) -> None:
    if not actor.can(TRIGGER):
        raise Forbidden(f"you need the '{TRIGGER}' permission")


routes = [run_input, cancel_run]
