"""One schedule: configuration, status, the runs chart, run history and the audit trail.

The page answers three htmx targets besides the full page: ``run-history`` (filter and paging
of the history), ``overview`` (status and chart, refreshed when a run ends) and a single run
(``/runs/{run_id}``), which an in-progress run polls until it has finished. A run's log
(``/runs/{run_id}/logs?after=N``) is read when the run is opened, and followed with a cursor:
each answer brings the lines after ``N`` and, while more may come, the element that asks for
the next ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from app.domain.actors import VIEW, Actor
from app.domain.errors import NotFound
from app.domain.listing import RunQuery
from app.domain.run_log_reads import read_run_log
from app.domain.stacks import shown_stack
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
from app.web.pages.responses import VARY, int_param, is_htmx, job_url, query_string, render, wants_block

ID = "{job_id:str}"
HISTORY_PAGE_SIZE = 20
CHART_RUNS = 40
#: How often a queued or running run asks for its news (htmx polling).
POLL_EVERY = "1s"
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


def _run_context() -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "trigger_labels": TRIGGER_LABELS,
        "finished": FINISHED,
        "duration": duration,
        "pretty_json": pretty_json,
        "poll_every": POLL_EVERY,
        "shown_stack": shown_stack,
    }


async def history_context(
    request: Request[Any, Any, Any], job: Any, actor: Actor, params: Mapping[str, Any]
) -> dict[str, Any]:
    filters = _history_filters(params)
    runs = await runtime_of(request).scheduler.runs(
        job.id,
        RunQuery(
            status=filters["status"] or None,
            trigger=filters["trigger"] or None,
            page=filters["runs_page"],
            page_size=HISTORY_PAGE_SIZE,
        ),
        actor,
    )
    base = job_url(job.id)

    def history_url(**changes: Any) -> str:
        state = {**filters, "runs_page": 1, **changes}
        return base + query_string({k: v for k, v in state.items() if v and not (k == "runs_page" and v == 1)})

    return {
        "job": job,
        "runs": runs,
        "filters": filters,
        "history_url": history_url,
        **_run_context(),
        "run_statuses": RUN_STATUSES,
        "run_triggers": RUN_TRIGGERS,
    }


async def _overview_context(request: Request[Any, Any, Any], job: Any, actor: Actor) -> dict[str, Any]:
    runtime = runtime_of(request)
    recent = await runtime.scheduler.runs(job.id, RunQuery(page_size=CHART_RUNS), actor)
    fmt = TimeFormat(runtime.clock())
    return {
        "job": job,
        "chart": runs_chart(recent.items, fmt, job.timezone),
        "status_labels": STATUS_LABELS,
        "describe": describe_schedule,
        "target_label": target_label(job, runtime.registry),
    }


@get(f"{HOME}/{ID}", name="jobs.detail")
async def detail(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
    actor = require(request, VIEW)
    runtime = runtime_of(request)
    job = await runtime.scheduler.get(job_id, actor)
    if wants_block(request, "run-history"):
        context = await history_context(request, job, actor, request.query_params)
        return render(
            request,
            "jobs/detail.html",
            context,
            block="run_history",
            headers={"HX-Push-Url": context["history_url"](runs_page=context["filters"]["runs_page"])},
        )
    if wants_block(request, "overview"):
        return render(request, "jobs/detail.html", await _overview_context(request, job, actor), block="overview")
    trail = await runtime.scheduler.audit_trail(job_id, actor, limit=50)
    context = {
        **await history_context(request, job, actor, request.query_params),
        **await _overview_context(request, job, actor),
        "scope_label": scope_label,
        "target_name": target_name(job),
        "catch_up_labels": CATCH_UP_LABELS,
        "overlap_labels": OVERLAP_LABELS,
        "audit": [(entry, audit_changes(entry.before, entry.after)) for entry in trail],
        "audit_labels": AUDIT_LABELS,
    }
    return render(request, "jobs/detail.html", context)


@get(f"{HOME}/{ID}/runs/{{run_id:str}}", name="jobs.run_status")
async def run_status(request: Request[Any, Any, Any], job_id: FromPath[str], run_id: FromPath[str]) -> Response[Any]:
    """One run's row. Once the run has finished, answer 286 (htmx stops polling) and announce
    ``runFinished`` so the status panel and chart refresh themselves."""
    actor = require(request, VIEW)
    runtime = runtime_of(request)
    run = await runtime.scheduler.get_run(job_id, run_id, actor)
    try:
        job = await runtime.scheduler.get(job_id, actor)
    except NotFound:
        # Deleted while its page was open: the row has nothing more to show; stop polling.
        return Response("", status_code=286 if is_htmx(request) else 404, headers=VARY)
    done = run.status in FINISHED
    return render(
        request,
        "jobs/_run.html",
        {"job": job, "run": run, **_run_context()},
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
