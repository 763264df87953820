"""Creating and editing a schedule, with a live preview of what the schedule means.

A rejected form is rendered again (422) with each message next to its field and everything the
person typed kept. Editing carries the version the person started from: saving over a newer
change is refused (409) with the form kept, never silently overwritten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from app import engine
from app.domain.actors import MANAGE, VIEW, Actor
from app.domain.errors import Conflict, Forbidden, ValidationError
from app.domain.registry import Target, schedulable_scopes
from app.web.auth import require, runtime_of
from app.web.formatting import (
    CATCH_UP_LABELS,
    FIELD_LABELS,
    OVERLAP_LABELS,
    SCOPE_LABELS,
    SchedulePreview,
    TimeFormat,
    schedule_preview,
)
from app.web.forms import JobForm
from app.web.login import HOME
from app.web.pages.flash import Flash
from app.web.pages.responses import job_url, redirect, render

ID = "{job_id:str}"


def _preview_for(request: Request[Any, Any, Any], values: dict[str, str], anchor: datetime | None) -> SchedulePreview:
    runtime = runtime_of(request)
    return schedule_preview(
        values.get("schedule_type", "cron"),
        values.get("schedule_value", ""),
        values.get("timezone", "UTC"),
        now=runtime.clock(),
        start_at=values.get("start_at"),
        end_at=values.get("end_at"),
        anchor=anchor,
        min_interval_seconds=runtime.settings.scheduler_min_interval_seconds,
    )


def _target_choice(request: Request[Any, Any, Any], actor: Actor, value: str) -> Target | None:
    """The chosen target, if ``actor`` may schedule it in some scope (else as if unknown)."""
    kind, _, name = (value or "").partition(":")
    target = runtime_of(request).registry.get(kind, name) if kind in ("queue", "command") else None
    if target is None or not target.schedulable or not target.scopes & schedulable_scopes(actor):
        return None
    return target


def _scope_choices(actor: Actor) -> dict[str, str]:
    if actor.is_superadmin:
        return dict(SCOPE_LABELS)
    return {"organization": SCOPE_LABELS["organization"], "tenant": SCOPE_LABELS["tenant"]}


def _form_page(
    request: Request[Any, Any, Any],
    actor: Actor,
    form: JobForm,
    *,
    job: Any = None,
    status: int = 200,
    conflict: str | None = None,
) -> Response[Any]:
    registry = runtime_of(request).registry
    allowed = schedulable_scopes(actor)
    context = {
        "form": form,
        "job": job,
        "action": job_url(job.id, "/edit") if job else f"{HOME}/new",
        "cancel": job_url(job.id) if job else HOME,
        "targets": {kind: registry.schedulable(kind, scopes=allowed) for kind in ("command", "queue")},
        "target": _target_choice(request, actor, form.values.get("target", "")),
        "timezones": engine.all_timezones(),
        "schedule_types": engine.SCHEDULE_TYPES,
        "scope_choices": _scope_choices(actor),
        "scope_labels": SCOPE_LABELS,
        "catch_up_labels": CATCH_UP_LABELS,
        "overlap_labels": OVERLAP_LABELS,
        "preview": _preview_for(request, form.values, job.anchor_at if job else None),
        "anchor": TimeFormat.iso(job.anchor_at) if job else "",
        "conflict": conflict,
        "field_labels": {**FIELD_LABELS, "target": "Target"},
    }
    return render(request, "jobs/form.html", context, status=status)


@get(f"{HOME}/new", name="jobs.new")
async def new_form(request: Request[Any, Any, Any]) -> Response[Any]:
    actor = require(request, MANAGE)
    return _form_page(request, actor, JobForm.blank(actor))


@post(f"{HOME}/new", name="jobs.create")
async def create(request: Request[Any, Any, Any]) -> Response[Any]:
    actor = require(request, MANAGE)
    form = JobForm.from_submission(await request.form())
    try:
        job = await runtime_of(request).scheduler.create(form.changes(actor, creating=True), actor)
    except ValidationError as exc:
        return _form_page(request, actor, form.with_errors(exc.errors), status=422)
    return redirect(request, job_url(job.id), Flash(f"Created “{job.name}”."))


async def _editable(request: Request[Any, Any, Any], job_id: str) -> tuple[Actor, Any]:
    """The schedule, if the caller may see it (else 404) and change it (else 403)."""
    actor = require(request, VIEW)
    job = await runtime_of(request).scheduler.get(job_id, actor)
    if not actor.can(MANAGE):
        raise Forbidden(f"you need the '{MANAGE}' permission")
    return actor, job


@get(f"{HOME}/{ID}/edit", name="jobs.edit")
async def edit_form(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor, job = await _editable(request, job_id)
    return _form_page(request, actor, JobForm.from_job(job), job=job)


@post(f"{HOME}/{ID}/edit", name="jobs.update")
async def update(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor, job = await _editable(request, job_id)
    form = JobForm.from_submission(await request.form())
    try:
        saved = await runtime_of(request).scheduler.update(
            job_id, form.changes(actor, creating=False), actor, expected_version=form.version
        )
    except ValidationError as exc:
        return _form_page(request, actor, form.with_errors(exc.errors), job=job, status=422)
    except Conflict as exc:
        return _form_page(request, actor, form, job=job, status=409, conflict=str(exc))
    return redirect(request, job_url(job_id), Flash(f"Saved “{saved.name}”.", undo=[job_id]))


@get(f"{HOME}/preview", name="jobs.preview")
async def preview(request: Request[Any, Any, Any]) -> Response[Any]:
    """The preview panel for what is typed right now (htmx swaps it in as the person types)."""
    require(request, VIEW)
    params = request.query_params
    values = {
        key: str(params.get(key) or "")[:300]
        for key in ("schedule_type", "schedule_value", "timezone", "start_at", "end_at")
    }
    try:
        anchor = datetime.fromisoformat(str(params.get("anchor") or ""))
    except ValueError:
        anchor = None
    return render(request, "jobs/form.html", {"preview": _preview_for(request, values, anchor)}, block="preview")


@get(f"{HOME}/target", name="jobs.target_hint")
async def target_hint(request: Request[Any, Any, Any]) -> Response[Any]:
    """What the chosen target does and an example payload."""
    actor = require(request, VIEW)
    target = _target_choice(request, actor, str(request.query_params.get("target") or ""))
    return render(request, "jobs/form.html", {"target": target}, block="target_hint")


routes = [new_form, create, edit_form, update, preview, target_hint]
