"""The Litestar application factory."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.response import Response

from app.runtime import Runtime
from app.settings import Settings, get_settings

log = logging.getLogger("mercato.web")


def create_app(settings: Settings | None = None, *, run_scheduler: bool = True, runtime: Runtime | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        rt = runtime or Runtime.create(settings)
        app.state.runtime = rt
        first = await rt.users.ensure_first_admin()
        if first is not None:
            print(
                "\n  First admin account created (shown once, change it after logging in):\n"
                f"    email:    {first.user.email}\n    password: {first.password}\n",
                flush=True,
            )
        try:
            yield
        finally:
            if runtime is None:
                await rt.close()

    return Litestar(route_handlers=[home, healthz], lifespan=[lifespan], state=State({"settings": settings}))


@get("/", sync_to_thread=False)
async def home(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    counts = await runtime.scheduler.counts()
    body = (
        "<!doctype html><title>Mercato Scheduler</title><h1>Mercato Scheduler</h1>"
        f"<p>{counts['total']} schedules, {counts['enabled']} enabled, {counts['due_now']} due now.</p>"
    )
    return Response(body, media_type="text/html")


@get("/healthz", sync_to_thread=False)
async def healthz() -> dict:
    return {"status": "ok"}
