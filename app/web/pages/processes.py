"""The Processes page, and the health banner every scheduler page shows when nothing fires."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get

from app.domain import health, heartbeats
from app.domain.actors import VIEW
from app.domain.heartbeats import COMMANDS, ProcessKind
from app.web.auth import require, runtime_of
from app.web.login import HOME
from app.web.pages.responses import is_htmx, render

log = logging.getLogger("mercato.web")

KIND_LABELS = {
    ProcessKind.EMBEDDED: "Poller in the web app",
    ProcessKind.POLLER: "Poller",
    ProcessKind.ASYNC_SCHEDULER: "Taskiq scheduler",
    ProcessKind.WORKER: "Worker",
}


@get(f"{HOME}/processes", name="jobs.processes")
async def processes_page(request: Request[Any, Any, Any]) -> Response[Any]:
    runtime = runtime_of(request)
    listing = await heartbeats.process_listing(runtime, require(request, VIEW))
    strategy = runtime.settings.queue_strategy
    context = {"listing": listing, "kind_labels": KIND_LABELS, "commands": COMMANDS, "strategy": strategy}
    return render(request, "jobs/processes.html", context)


async def load_banner(request: Request[Any, Any, Any]) -> None:
    """Before a scheduler page: what the health banner says (``request.state.health``).

    Only for whole pages (an htmx fragment has no banner) of someone who may view schedules.
    Two indexed queries; a failure leaves the banner out rather than the page.
    """
    request.state.health = None
    actor = request.state.actor
    if request.method != "GET" or not request.url.path.startswith(HOME) or is_htmx(request):
        return
    if actor is None or not actor.can(VIEW):
        return
    try:
        request.state.health = await health.assess(runtime_of(request), actor)
    except Exception:  # the page itself says what is wrong with the database
        log.warning("the scheduler's health could not be read", exc_info=True)


routes = [processes_page]
