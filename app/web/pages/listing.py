"""The schedules list: search, filters, sort and pagination kept in the URL, and bulk actions."""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect

from app import engine
from app.domain.actors import MANAGE, TRIGGER, VIEW, Actor
from app.domain.errors import DomainError
from app.domain.listing import SORTS, JobQuery, Page
from app.domain.validation import SOURCE_TYPES, TARGET_TYPES
from app.domain.vocabulary import RUN_STATUSES
from app.persistence.models import ScheduledJob
from app.web.auth import require, runtime_of
from app.web.formatting import SCOPE_LABELS, STATUS_LABELS, TimeFormat, describe_schedule, target_label
from app.web.login import HOME
from app.web.pages.flash import Flash
from app.web.pages.responses import VARY, int_param, query_string, redirect, render, return_to, wants_block

PAGE_SIZES = (10, 25, 50, 100)
#: How often an open list refreshes its next-run and last-run cells.
LIVE_EVERY = "10s"
SORT_COLUMNS = {"name": "Name", "nextRunAt": "Next run", "lastRunAt": "Last run"}
BULK_LIMIT = 100


@dataclass(frozen=True)
class ListState:
    """Everything that decides what the list shows; it round-trips through the query string."""

    q: str = ""
    enabled: str = ""
    scope: str = ""
    target: str = ""
    type: str = ""
    source: str = ""
    status: str = ""
    sort: str = "name"
    order: str = "asc"
    page: int = 1
    size: int = 25

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ListState:
        def pick(name: str, allowed: Container[str]) -> str:
            value = str(params.get(name) or "").strip()
            return value if value in allowed else ""

        source = str(params.get("source") or "").strip()[:120]
        size = int_param(params.get("size"), 25, maximum=100)
        return cls(
            q=str(params.get("q") or "").strip()[:200],
            enabled=pick("enabled", ("true", "false")),
            scope=pick("scope", tuple(SCOPE_LABELS)),
            target=pick("target", TARGET_TYPES),
            type=pick("type", engine.SCHEDULE_TYPES),
            source=source if source in SOURCE_TYPES or source.startswith("module:") else "",
            status=pick("status", RUN_STATUSES),
            sort=pick("sort", tuple(SORTS)) or "name",
            order="desc" if params.get("order") == "desc" else "asc",
            page=int_param(params.get("page"), 1, maximum=100_000),
            size=size if size in PAGE_SIZES else 25,
        )

    def query(self) -> JobQuery:
        source_type, _, module = self.source.partition(":")
        return JobQuery(
            search=self.q or None,
            scope_type=self.scope or None,
            is_enabled={"true": True, "false": False}.get(self.enabled),
            schedule_type=self.type or None,
            target_type=self.target or None,
            source_type=source_type or None,
            source_module=module or None,
            last_status=self.status or None,
            sort=self.sort,
            order=self.order,
            page=self.page,
            page_size=self.size,
        )

    @property
    def filtered(self) -> bool:
        return any((self.q, self.enabled, self.scope, self.target, self.type, self.source, self.status))

    def url(self, **changes: Any) -> str:
        """This state with ``changes``; any change but the page itself starts again at page 1."""
        changes.setdefault("page", 1)
        state = replace(self, **changes)
        defaults = ListState()
        params = {k: v for k, v in asdict(state).items() if v != getattr(defaults, k)}
        return HOME + query_string(params)

    def sort_url(self, column: str) -> str:
        order = "desc" if self.sort == column and self.order == "asc" else "asc"
        return self.url(sort=column, order=order)

    def aria_sort(self, column: str) -> str:
        if self.sort != column:
            return "none"
        return "ascending" if self.order == "asc" else "descending"


@dataclass(frozen=True)
class Pager:
    first: int
    last: int
    has_prev: bool
    has_next: bool
    #: Page numbers to link, None where some are left out ("…").
    numbers: list[int | None]


def pager(page: Page) -> Pager:
    first = (page.page - 1) * page.page_size + 1
    last = first + len(page.items) - 1
    # Past a capped count the last page is unknown: "next" stays while pages come back full.
    known_last = page.pages
    has_next = page.page < known_last or (not page.total_exact and len(page.items) == page.page_size)
    wanted = {1, known_last, *range(page.page - 2, page.page + 3)}
    numbers: list[int | None] = []
    for number in sorted(n for n in wanted if 1 <= n <= max(known_last, page.page)):
        if numbers and numbers[-1] is not None and number - numbers[-1] > 1:
            numbers.append(None)
        numbers.append(number)
    if not page.total_exact:
        numbers.append(None)
    return Pager(first, last, page.page > 1, has_next, numbers)


@get(HOME, name="jobs.list")
async def jobs_list(request: Request[Any, Any, Any]) -> Response[Any]:
    actor = require(request, VIEW)
    runtime = runtime_of(request)
    if wants_block(request, "list-live"):
        return await _live_cells(request, actor)
    state = ListState.from_params(request.query_params)
    page = await runtime.scheduler.list(state.query(), actor)
    context = {
        "live_every": LIVE_EVERY,
        "row_key": row_key,
        "state": state,
        "page": page,
        "pager": pager(page),
        "sort_columns": SORT_COLUMNS,
        "describe": describe_schedule,
        "target_label": lambda job: target_label(job, runtime.registry),
        "status_labels": STATUS_LABELS,
        "page_sizes": PAGE_SIZES,
        "scope_labels": SCOPE_LABELS,
    }
    context["seen"] = _times_digest(TimeFormat(runtime.clock()), page.items)
    if wants_block(request, "jobs-table"):
        # The filter form sends every field, empty ones too: the address bar gets the tidy URL.
        return render(
            request,
            "jobs/list.html",
            {**context, "fragment": True},
            block="table",
            headers={"HX-Push-Url": state.url(page=state.page)},
        )
    modules = await runtime.scheduler.source_modules(actor)
    return render(request, "jobs/list.html", {**context, "modules": modules})


def row_key(job_id: str) -> str:
    """A row's id in the page: any schedule id, made safe for an HTML id and a CSS selector."""
    return hashlib.blake2b(job_id.encode(), digest_size=8).hexdigest()


def _times_digest(fmt: TimeFormat, jobs: Iterable[ScheduledJob]) -> str:
    """What the next-run and last-run cells of these rows say, to within the text shown."""
    shown = hashlib.blake2b(digest_size=12)
    for job in jobs:
        times = (job.next_run_at, job.last_run_at)
        for part in (job.id, job.last_status, *map(fmt.iso, times), *map(fmt.relative, times)):
            shown.update(f"{part}\x1f".encode())
    return shown.hexdigest()


async def _live_cells(request: Request[Any, Any, Any], actor: Actor) -> Response[Any]:
    """Fresh next-run and last-run cells of the rows an open list shows (``shown``), out of band,
    or 204 when what they say has not changed (``seen``). Rows, order, selection, scroll and
    the filter form are left alone: the cells of a row are all that is replaced."""
    runtime = runtime_of(request)
    shown = [str(value) for value in request.query_params.getall("shown", [])]
    by_id = {job.id: job for job in await runtime.scheduler.shown(shown, actor)}
    jobs = [by_id[job_id] for job_id in shown if job_id in by_id]
    seen = _times_digest(TimeFormat(runtime.clock()), jobs)
    if seen == request.query_params.get("seen"):
        return Response("", status_code=204, headers=VARY)
    context = {"jobs": jobs, "seen": seen, "row_key": row_key, "status_labels": STATUS_LABELS}
    return render(request, "jobs/_row_times.html", context, partial=True)


BULK_ACTIONS = {
    # action: (feature, service call, past tense)
    "enable": (MANAGE, "enable", "Enabled"),
    "disable": (MANAGE, "disable", "Disabled"),
    "run": (TRIGGER, "trigger", "Queued a run of"),
    "delete": (MANAGE, "delete", "Deleted"),
    "undo": (MANAGE, "undo", "Restored"),
}


def plural(count: int, word: str = "schedule") -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@post(f"{HOME}/bulk", name="jobs.bulk")
async def bulk(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    action = str(form.get("action", ""))
    back = return_to(form.get("return_to"))
    if action not in BULK_ACTIONS:
        return redirect(request, back, Flash("Choose what to do with the selected schedules.", "error"))
    feature, method, done = BULK_ACTIONS[action]
    actor = require(request, feature)
    ids = list(dict.fromkeys(str(i) for i in form.getall("ids", [])))[:BULK_LIMIT]
    if not ids:
        return redirect(request, back, Flash("Select at least one schedule first.", "error"))
    scheduler = runtime_of(request).scheduler
    if action == "delete" and form.get("confirmed") != "yes":
        jobs = []
        for job_id in ids:
            try:
                jobs.append(await scheduler.get(job_id, actor))
            except DomainError:
                continue
        return render(request, "jobs/confirm_delete.html", {"jobs": jobs, "back": back})
    succeeded: list[str] = []
    failed: list[str] = []
    for job_id in ids:
        try:
            await getattr(scheduler, method)(job_id, actor)
            succeeded.append(job_id)
        except DomainError as exc:
            failed.append(f"{job_id}: {exc}")
    messages = []
    if succeeded:
        undo = succeeded if action == "delete" else []
        messages.append(Flash(f"{done} {plural(len(succeeded))}.", "success", undo=undo))
    if failed:
        messages.append(Flash(f"{plural(len(failed))} could not be changed: " + "; ".join(failed[:5]), "error"))
    return redirect(request, back, *messages)


@get("/", name="root")
async def root() -> Response[Any]:
    return Redirect(HOME)


routes = [root, jobs_list, bulk]
