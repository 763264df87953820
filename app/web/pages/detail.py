"""One schedule: configuration, status, the runs chart, run history and the audit trail.

The page answers three htmx targets besides the full page: ``run-history`` (filter and paging
of the history), ``live`` (what changed since the page last looked) and a single run
(``/runs/{run_id}``), which an in-progress run polls until it has finished.

Staying current: an open page asks every ``LIVE_EVERY`` (and at once when one of its runs
ends) with digests of the overview and the history it shows. The server reads the schedule,
its newest runs and the history page in one snapshot (``SchedulerService.snapshot``), renders
both parts and sends back only those whose HTML differs (out-of-band swaps), or 204. New runs
appear, a finished run's status replaces "Running", a passed "Next run" moves on, and what the
user is doing elsewhere on the page (a form, a selection, an open run) is left alone. An older
page of the history is left as it is: new runs would shift it under the reader.

A run's log (``/runs/{run_id}/logs?after=N``) is read when the run is opened, and followed with
a cursor: each answer brings the lines after ``N`` and, while more may come, the element that
asks for the next ones (the log is preserved when its row is swapped).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath
from markupsafe import Markup

from app.domain.actors import VIEW, Actor
from app.domain.errors import NotFound
from app.domain.listing import RunQuery
from app.domain.run_log_reads import read_run_log
from app.domain.service import JobSnapshot
from app.domain.stacks import shown_stack
from app.domain.trash import purge_at
from app.domain.vocabulary import FINISHED, RUN_STATUSES, RUN_TRIGGERS
from app.web.auth import require, runtime_of
from app.web.formatting import (
    AUDIT_LABELS,
    CATCH_UP_LABELS,
    OVERLAP_LABELS,
    STATUS_LABELS,
    TRIGGER_LABELS,
    TimeFormat,
    audit_changes,
    describe_schedule,
    duration,
    pretty_json,
    runs_chart,
    scope_label,
    target_label,
    target_name,
)
from app.web.login import HOME
from app.web.pages.flash import Flash
from app.web.pages.responses import (
    VARY,
    int_param,
    is_htmx,
    job_url,
    query_string,
    render,
    render_text,
    wants_block,
)

ID = "{job_id:str}"
HISTORY_PAGE_SIZE = 20
CHART_RUNS = 40
#: How often a queued or running run asks for its news (htmx polling).
POLL_EVERY = "1s"
#: How often an open schedule page asks whether its overview or history changed.
LIVE_EVERY = "5s"
#: Log lines one answer of the run's log brings at most (the next ones are asked for at once).
LOG_LINES_PER_ANSWER = 200


def _history_filters(params: Mapping[str, Any]) -> dict[str, Any]:
    status = str(params.get("status") or "")
    trigger = str(params.get("trigger") or "")
    return {
        "status": status if status in RUN_STATUSES else "",
        "trigger": trigger if trigger in RUN_TRIGGERS else "",
        "runs_page": int_param(params.get("runs_page"), 1, maximum=100_000),
    }


def run_context() -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "trigger_labels": TRIGGER_LABELS,
        "finished": FINISHED,
        "duration": duration,
        "pretty_json": pretty_json,
        "poll_every": POLL_EVERY,
        "shown_stack": shown_stack,
    }


def _history_url(job_id: str, filters: Mapping[str, Any], **changes: Any) -> str:
    state = {**filters, "runs_page": 1, **changes}
    return job_url(job_id) + query_string({k: v for k, v in state.items() if v and not (k == "runs_page" and v == 1)})


async def _read(request: Request[Any, Any, Any], job_id: str, actor: Actor, filters: Mapping[str, Any]) -> JobSnapshot:
    history = RunQuery(
        status=filters["status"] or None,
        trigger=filters["trigger"] or None,
        page=filters["runs_page"],
        page_size=HISTORY_PAGE_SIZE,
    )
    return await runtime_of(request).scheduler.snapshot(job_id, history, CHART_RUNS, actor)


def _history_context(snap: JobSnapshot, filters: dict[str, Any]) -> dict[str, Any]:
    job = snap.job
    return {
        "job": job,
        "runs": snap.history,
        "filters": filters,
        "history_url": lambda **changes: _history_url(job.id, filters, **changes),
        **run_context(),
        "run_statuses": RUN_STATUSES,
        "run_triggers": RUN_TRIGGERS,
    }


def _overview_context(request: Request[Any, Any, Any], snap: JobSnapshot) -> dict[str, Any]:
    runtime = runtime_of(request)
    fmt = TimeFormat(runtime.clock())
    return {
        "job": snap.job,
        "last_run": snap.last_run,
        "chart": runs_chart(snap.recent, fmt, snap.job.timezone),
        "status_labels": STATUS_LABELS,
        "describe": describe_schedule,
        "target_label": target_label(snap.job, runtime.registry),
    }


#: A form's CSRF token is masked afresh on every render: not part of what a part shows.
_CSRF_VALUE = re.compile(r'name="_csrf" value="[^"]*"')


def _digest(html: str) -> str:
    return hashlib.blake2b(_CSRF_VALUE.sub("", html).encode(), digest_size=12).hexdigest()


def _seen(request: Request[Any, Any, Any], part: str, html: Markup, filters: dict[str, Any] | None = None) -> Markup:
    """What the page keeps of ``part`` to ask whether it changed (``jobs/_seen.html``)."""
    return render_text(request, "jobs/_seen.html", {"part": part, "digest": _digest(html), "filters": filters})


async def history_response(
    request: Request[Any, Any, Any],
    job_id: str,
    actor: Actor,
    params: Mapping[str, Any],
    *,
    flashes: list[Flash] | None = None,
    highlight: str | None = None,
    url_header: str = "HX-Push-Url",
) -> Response[Any]:
    """The run history alone (``#run-history``), for its filters, its pages and "Run now"
    (which replaces the address instead of pushing one: ``url_header``)."""
    filters = _history_filters(params)
    snap = await _read(request, job_id, actor, filters)
    history = render_text(request, "jobs/_history.html", {**_history_context(snap, filters), "highlight": highlight})
    parts = [history, _seen(request, "history", history, filters)]
    if flashes:
        parts.append(render_text(request, "_flash_oob.html", {"flashes": flashes}))
    url = _history_url(job_id, filters, runs_page=filters["runs_page"])
    return Response(
        Markup("\n").join(parts),
        media_type="text/html",
        status_code=200,
        headers={**VARY, url_header: url},
    )


async def _live(request: Request[Any, Any, Any], job_id: str, actor: Actor) -> Response[Any]:
    params = request.query_params
    filters = _history_filters(params)
    try:
        snap = await _read(request, job_id, actor, filters)
    except NotFound:
        # Purged (or out of reach) while the page was open: stop asking.
        return Response("", status_code=286, headers=VARY)
    parts: list[Markup] = []
    overview_context = _overview_context(request, snap)
    overview = render_text(request, "jobs/_overview.html", overview_context)
    if _digest(overview) != params.get("seen_overview"):
        parts.append(render_text(request, "jobs/_overview.html", {**overview_context, "oob": True}))
        parts.append(_seen(request, "overview", overview))
    if filters["runs_page"] == 1:
        history_context = _history_context(snap, filters)
        history = render_text(request, "jobs/_history.html", history_context)
        if _digest(history) != params.get("seen_history"):
            parts.append(render_text(request, "jobs/_history.html", {**history_context, "oob": True}))
            parts.append(_seen(request, "history", history, filters))
    if not parts:
        return Response("", status_code=204, headers=VARY)
    return Response(Markup("\n").join(parts), media_type="text/html", status_code=200, headers=VARY)


@get(f"{HOME}/{ID}", name="jobs.detail")
async def detail(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor = require(request, VIEW)
    if wants_block(request, "run-history"):
        return await history_response(request, job_id, actor, request.query_params)
    if wants_block(request, "live"):
        return await _live(request, job_id, actor)
    runtime = runtime_of(request)
    filters = _history_filters(request.query_params)
    snap = await _read(request, job_id, actor, filters)
    trail = await runtime.scheduler.audit_trail(job_id, actor, limit=50)
    history_context = _history_context(snap, filters)
    overview_context = _overview_context(request, snap)
    overview = render_text(request, "jobs/_overview.html", overview_context)
    history = render_text(request, "jobs/_history.html", history_context)
    context = {
        **history_context,
        **overview_context,
        "overview_html": overview,
        "history_html": history,
        "seen_html": _seen(request, "overview", overview) + _seen(request, "history", history, filters),
        "live_every": LIVE_EVERY,
        "scope_label": scope_label,
        "target_name": target_name(snap.job),
        "catch_up_labels": CATCH_UP_LABELS,
        "overlap_labels": OVERLAP_LABELS,
        "audit": [(entry, audit_changes(entry.before, entry.after)) for entry in trail],
        "audit_labels": AUDIT_LABELS,
        "purge_at": purge_at(snap.job, runtime.settings.scheduler_trash_retention_days),
    }
    return render(request, "jobs/detail.html", context)


@get(f"{HOME}/{ID}/runs/{{run_id:str}}", name="jobs.run_status")
async def run_status(request: Request[Any, Any, Any], job_id: FromPath[str], run_id: FromPath[str]) -> Response[Any]:
    """One run: its own page when opened (a shareable URL), its row for htmx. Once the run has
    finished, the row answers 286 (htmx stops polling) and announces ``runFinished`` so the
    page asks for its news at once."""
    actor = require(request, VIEW)
    runtime = runtime_of(request)
    run = await runtime.scheduler.get_run(job_id, run_id, actor)
    # A run of a schedule deleted while it ran goes on showing (on its read-only page too) until it ends.
    job = await runtime.scheduler.get(job_id, actor, include_deleted=True)
    if not is_htmx(request):
        context = {"job": job, "run": run, "open_run": True, "scope_label": scope_label, **run_context()}
        return render(request, "jobs/run.html", context)
    done = run.status in FINISHED
    return render(
        request,
        "jobs/_run.html",
        {"job": job, "run": run, **run_context()},
        status=286 if done and is_htmx(request) else 200,
        headers={"HX-Trigger": "runFinished"} if done else None,
        partial=True,
    )


@get(f"{HOME}/{ID}/runs/{{run_id:str}}/logs", name="jobs.run_log")
async def run_log(request: Request[Any, Any, Any], job_id: FromPath[str], run_id: FromPath[str]) -> Response[Any]:
    """A run's log lines after the ``after`` cursor, escaped; then, unless the run has finished
    and every line is shown, the element that asks for the next ones."""
    actor = require(request, VIEW)
    runtime = runtime_of(request)
    after = int_param(request.query_params.get("after"), 0, minimum=0, maximum=2**31 - 1)
    page = await read_run_log(runtime.scheduler, run_id, actor, job_id=job_id, after=after, limit=LOG_LINES_PER_ANSWER)
    try:
        timezone = (await runtime.scheduler.get(job_id, actor)).timezone
    except NotFound:  # deleted since: its runs keep their logs
        timezone = "UTC"
    return render(
        request,
        "jobs/_run_log_lines.html",
        {"job_id": job_id, "page": page, "timezone": timezone, "poll_every": POLL_EVERY},
        partial=True,
    )


routes = [detail, run_status, run_log]
