"""The Runs page: every run the user may see, across schedules, with counts by status.

The whole state (filters, time range, page) is in the URL, so a view such as "failed in the
last hour" (``?status=failed&since=1h``) is a link to share; ``since=1h`` stays relative, so the
link keeps meaning the last hour. htmx swaps the table (``#runs-table``) in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from litestar import Request, Response, get

from app.domain.actors import VIEW
from app.domain.errors import ValidationError
from app.domain.run_listing import MAX_PAGE, MOMENT_HELP, AllRunsQuery, browse_runs, parse_moment, scope_choices
from app.domain.vocabulary import RUN_STATUSES, RUN_TRIGGERS, RunStatus
from app.web.auth import require, runtime_of
from app.web.formatting import STATUS_LABELS, TRIGGER_LABELS, duration
from app.web.login import HOME
from app.web.pages.listing import PAGE_SIZES, pager
from app.web.pages.responses import int_param, is_htmx, query_string, render, wants_block

RUNS = f"{HOME}/runs"
#: The quick choices of the time range.
RANGES = {"1h": "Last hour", "24h": "24 hours", "7d": "7 days"}
#: The counts at the top, the failures first.
COUNT_ORDER = (
    RunStatus.FAILED,
    RunStatus.TIMED_OUT,
    RunStatus.MISSED,
    RunStatus.SKIPPED,
    RunStatus.RUNNING,
    RunStatus.QUEUED,
    RunStatus.SUCCEEDED,
)


@dataclass(frozen=True)
class RunsState:
    """Everything that decides what the Runs page shows; it round-trips through the query string."""

    status: str = ""
    trigger: str = ""
    q: str = ""
    job: str = ""
    tenant: str = ""
    org: str = ""
    since: str = ""
    until: str = ""
    page: int = 1
    size: int = 25

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunsState:
        def text(name: str, limit: int) -> str:
            return str(params.get(name) or "").strip()[:limit]

        status, trigger, size = text("status", 20), text("trigger", 20), int_param(params.get("size"), 25, maximum=100)
        return cls(
            status=status if status in RUN_STATUSES else "",
            trigger=trigger if trigger in RUN_TRIGGERS else "",
            q=text("q", 200),
            job=text("job", 200),
            tenant=text("tenant", 64),
            org=text("org", 64),
            since=text("since", 64),
            until=text("until", 64),
            page=int_param(params.get("page"), 1, maximum=MAX_PAGE),
            size=size if size in PAGE_SIZES else 25,
        )

    def query(self, now: Any) -> AllRunsQuery:
        """The domain query; ValidationError naming ``since``/``until`` when one cannot be read."""
        errors: dict[str, str] = {}
        moments = {}
        for name in ("since", "until"):
            value = getattr(self, name)
            try:
                moments[name] = parse_moment(value, now, name=name) if value else None
            except ValidationError as exc:
                errors.update(exc.errors)
        if not errors and moments["since"] and moments["until"] and moments["until"] <= moments["since"]:
            errors["until"] = "must be after 'since'"
        if errors:
            raise ValidationError(errors)
        return AllRunsQuery(
            status=self.status or None,
            trigger=self.trigger or None,
            job_id=self.job or None,
            search=self.q or None,
            tenant_id=self.tenant or None,
            organization_id=self.org or None,
            since=moments["since"],
            until=moments["until"],
            page=self.page,
            page_size=self.size,
        )

    @property
    def filtered(self) -> bool:
        return any((self.status, self.trigger, self.q, self.job, self.tenant, self.org, self.since, self.until))

    def url(self, **changes: Any) -> str:
        """This state with ``changes``; any change but the page itself starts again at page 1."""
        changes.setdefault("page", 1)
        if "tenant" in changes and changes["tenant"] != self.tenant:
            changes.setdefault("org", "")  # an organization belongs to one tenant
        state = replace(self, **changes)
        defaults = RunsState()
        return RUNS + query_string({k: v for k, v in asdict(state).items() if v != getattr(defaults, k)})


@get(RUNS, name="runs.list")
async def runs_list(request: Request[Any, Any, Any]) -> Response[Any]:
    actor = require(request, VIEW)
    runtime = runtime_of(request)
    state = RunsState.from_params(request.query_params)
    errors: dict[str, str] = {}
    overview = None
    try:
        overview = await browse_runs(runtime, state.query(runtime.clock()), actor)
    except ValidationError as exc:
        errors = exc.errors
    context: dict[str, Any] = {
        "state": state,
        "overview": overview,
        "pager": pager(overview.page) if overview else None,
        "errors": errors,
        "counts": _counts_in_order(overview),
        "status_labels": STATUS_LABELS,
        "trigger_labels": TRIGGER_LABELS,
        "run_statuses": RUN_STATUSES,
        "run_triggers": RUN_TRIGGERS,
        "duration": duration,
        "ranges": RANGES,
        "moment_help": MOMENT_HELP,
        "page_sizes": PAGE_SIZES,
        "runs_home": RUNS,
    }
    context["choices"] = await scope_choices(runtime, actor, state.tenant or None)
    if wants_block(request, "runs-table"):
        # The filter form sends every field, empty ones too: the address bar gets the tidy URL.
        return render(
            request,
            "jobs/runs.html",
            {**context, "fragment": True},
            block="table",
            headers={"HX-Push-Url": state.url(page=state.page)},
        )
    return render(request, "jobs/runs.html", context, status=422 if errors and not is_htmx(request) else 200)


def _counts_in_order(overview: Any) -> list[Any]:
    if overview is None:
        return []
    by_status = {count.status: count for count in overview.counts}
    return [by_status[status] for status in COUNT_ORDER if status in by_status]


routes = [runs_list]
