"""Admin pages. (The full UI lives under /backend/config/scheduled-jobs.)"""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.response import Redirect, Template

from app.domain.actors import VIEW
from app.web.auth import require, runtime_of
from app.web.login import HOME


@get("/", name="root")
async def root() -> Response:
    return Redirect(HOME)


@get(HOME, name="jobs.list")
async def jobs_list(request: Request) -> Template:
    actor = require(request, VIEW)
    counts = await runtime_of(request).scheduler.counts()
    return Template("jobs/list.html", context={"counts": counts, "actor": actor})


routes = [root, jobs_list]
