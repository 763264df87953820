"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Request
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from app.domain.heartbeats import ProcessKind
from app.domain.history import ensure_cleanup_schedule
from app.runtime import Runtime
from app.settings import PROJECT_ROOT, Settings, get_settings
from app.strategies.local import LocalScheduler
from app.web import api, assets, login, ops, pages
from app.web.auth import identify, masked_csrf_token, security_middleware
from app.web.errors import EXCEPTION_HANDLERS

log = logging.getLogger("mercato.web")


def create_app(
    settings: Settings | None = None, *, run_scheduler: bool = True, runtime: Runtime | None = None
) -> Litestar:
    settings = settings or get_settings()
    static = assets.Assets()

    def _template_globals(engine: JinjaTemplateEngine) -> None:
        engine.engine.globals.update(asset=static.url, csrf_token=masked_csrf_token)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        rt = runtime or Runtime.create(settings)
        app.state.runtime = rt
        first = await rt.users.ensure_first_admin()
        if first is not None:
            print(
                "\n  First admin account created (shown once; keep it somewhere safe):\n"
                f"    email:    {first.user.email}\n    password: {first.password}\n",
                flush=True,
            )
        poller_task = None
        if run_scheduler and settings.queue_strategy == "local":
            await ensure_cleanup_schedule(rt.scheduler)
            poller = LocalScheduler(rt, kind=ProcessKind.EMBEDDED)
            # Written before the app answers: its own pages never show "no scheduler" while it starts.
            await poller.heartbeat.start()
            poller_task = asyncio.create_task(poller.run(), name="poller")
            app.state.poller = poller
        try:
            yield
        finally:
            if poller_task is not None:
                app.state.poller.stop()
                await asyncio.gather(poller_task, return_exceptions=True)
            if runtime is None:
                await rt.close()

    return Litestar(
        route_handlers=[
            *login.routes,
            *pages.routes,
            *api.routes,
            *ops.routes,
            *assets.routes,
        ],
        lifespan=[lifespan],
        before_request=_before_request,
        middleware=[*_proxy_headers(settings), security_middleware],
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(
            directory=Path(PROJECT_ROOT / "templates"), engine=JinjaTemplateEngine, engine_callback=_template_globals
        ),
        state=State({"settings": settings, "assets": static}),
        # Pages and static files travel gzipped. The CSRF token on a page is masked afresh on
        # every render (``masked_csrf_token``), so compression cannot leak it (BREACH).
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024, gzip_compress_level=6),
        request_max_body_size=1024 * 1024,
        # Logging is set up once by the mercato command (app/logging.py), not by each app.
        logging_config=None,
        # Only the JSON API is documented: its router opts in, everything else stays out.
        include_in_schema=False,
        openapi_config=api.openapi_config(),
    )


async def _before_request(request: Request[Any, Any, Any]) -> None:
    """Who is calling (and CSRF); on scheduler pages, also what the health banner says."""
    await identify(request)
    await pages.processes.load_banner(request)


def _proxy_headers(settings: Settings) -> list[DefineMiddleware]:
    """Believe X-Forwarded-For/-Proto only from TRUSTED_PROXIES (the client's address is what
    the login throttle counts by). Done here, not by uvicorn, so that any server runs the app
    alike; ``mercato serve`` turns uvicorn's own proxy handling off."""
    if not settings.trusted_proxies:
        return []
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    # uvicorn types its ASGI scope and messages with its own TypedDicts, not Litestar's: same protocol.
    return [DefineMiddleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))]  # type: ignore[arg-type]
