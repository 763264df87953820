"""What every page handler shares: rendering a page or one of its blocks, redirects with a flash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from markupsafe import Markup

from app.domain.actors import MANAGE, TRIGGER
from app.web.auth import runtime_of
from app.web.formatting import TimeFormat
from app.web.login import HOME, safe_next
from app.web.pages import flash
from app.web.pages.flash import Flash

#: A URL that can answer a fragment says so, so no cache serves a fragment for a page.
VARY = {"Vary": "HX-Request, HX-Target"}


def job_url(job_id: str, suffix: str = "") -> str:
    return f"{HOME}/{job_id}{suffix}"


def wants_block(request: Request[Any, Any, Any], target_id: str) -> bool:
    """True for an htmx request that will swap the element ``#target_id``.

    A history restore (back button after the cache was evicted) wants the whole page.
    """
    headers = request.headers
    return (
        headers.get("hx-request") == "true"
        and headers.get("hx-history-restore-request") != "true"
        and headers.get("hx-target") == target_id
    )


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def render(
    request: Request[Any, Any, Any],
    template: str,
    context: Mapping[str, Any],
    *,
    block: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    partial: bool = False,
) -> HTMXBlockTemplate:
    """Render a page, or only ``block`` of it (or a ``partial`` template that is no page).
    Full pages show (and clear) pending flash messages."""
    ctx = _page_context(request, context)
    cookies = []
    if block is None and not partial:
        ctx["flashes"], clear = flash.take(request)
        if clear is not None:
            cookies.append(clear)
    return HTMXBlockTemplate(
        template_name=template,
        context=ctx,
        block_name=block,
        status_code=status,
        headers={**VARY, **(headers or {})},
        cookies=cookies,
    )


def render_text(request: Request[Any, Any, Any], template: str, context: Mapping[str, Any]) -> Markup:
    """A partial template rendered to HTML, with what every page's templates are given."""
    engine = request.app.template_engine
    assert isinstance(engine, JinjaTemplateEngine)
    return Markup(engine.engine.get_template(template).render(request=request, **_page_context(request, context)))


def _page_context(request: Request[Any, Any, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    actor = request.state.actor
    return {
        "actor": actor,
        "can_manage": bool(actor and actor.can(MANAGE)),
        "can_trigger": bool(actor and actor.can(TRIGGER)),
        "fmt": TimeFormat(runtime_of(request).clock()),
        "home": HOME,
        "job_url": job_url,
        **context,
    }


def redirect(request: Request[Any, Any, Any], to: str, *messages: Flash) -> Response[Any]:
    """POST → redirect → GET, carrying ``messages`` to the next page."""
    cookies = [flash.cookie_with(request, *messages)] if messages else []
    return Redirect(to, status_code=303, cookies=cookies)


def return_to(value: Any, default: str = HOME) -> str:
    """Where a form asked to go back to: same-site paths only (see ``safe_next``)."""
    return safe_next(value) if isinstance(value, str) and value else default


def query_string(params: Mapping[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""


def int_param(value: Any, default: int, *, minimum: int = 1, maximum: int = 1_000_000) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return default
    return min(max(number, minimum), maximum)
