"""The JSON API under ``/api/scheduler``: the same service functions as the admin UI.

Authentication is the browser session (with its CSRF token on unsafe requests) or
``Authorization: Bearer <API token>``; permissions and tenant scoping are the UI's. Only these
routes are in the OpenAPI document at ``/schema``. See ``docs/api.md``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from litestar import Request, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from app.domain.errors import ValidationError
from app.web.api import catalog, jobs, processes, runs, transfer, trash
from app.web.api.problems import EXCEPTION_HANDLERS
from app.web.auth import CsrfRejected, NotAuthenticated, identify, require


async def authenticate(request: Request[Any, Any, Any]) -> None:
    """Every API request needs a caller, checked before its body or parameters are read.

    This layer's hook replaces the app's ``identify``, so it calls it first. A request with no
    valid credentials at all answers 401 even when unsafe: without credentials there is nothing
    for a forged request to borrow, so the CSRF refusal (403) would only mislead.
    """
    try:
        await identify(request)
    except CsrfRejected:
        if request.state.user is None:
            raise NotAuthenticated("sign in or send 'Authorization: Bearer <token>'") from None
        raise
    require(request)
    # Every query parameter of the API takes one value: a repeated one is a mistake to name, not
    # something to resolve by picking one of its values.
    params = request.query_params
    repeated = sorted({key for key in params if len(params.getall(key)) > 1})
    if repeated:
        raise ValidationError({name: "give this parameter once" for name in repeated})


router = Router(
    path=jobs.BASE,
    route_handlers=[
        *jobs.routes,
        *runs.routes,
        *catalog.routes,
        *transfer.routes,
        *trash.routes,
        *processes.routes,
    ],
    before_request=authenticate,
    exception_handlers=EXCEPTION_HANDLERS,
    include_in_schema=True,
    tags=["scheduler"],
    security=[{"bearerToken": []}, {"browserSession": []}],
)

routes = [router]


def openapi_config() -> OpenAPIConfig:
    """The document at ``/schema`` (JSON; also ``/schema/openapi.json`` and ``/schema/openapi.yaml``)."""
    try:
        app_version = version("mercato-scheduler")
    except PackageNotFoundError:  # running from a source tree that was never installed
        app_version = "0.0.0"
    return OpenAPIConfig(
        title="Mercato Scheduler API",
        version=app_version,
        description=(
            "Database-managed scheduled jobs. Authenticate with `Authorization: Bearer <token>` "
            "(`mercato users token create`), or a browser session plus its `X-CSRF-Token` on unsafe requests. "
            "Errors are `application/problem+json`; `errors` maps each invalid field to a message."
        ),
        path="/schema",
        render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), YamlRenderPlugin(path="/openapi.yaml")],
        components=Components(
            security_schemes={
                "bearerToken": SecurityScheme(type="http", scheme="bearer", description="An API token (msk_...)."),
                "browserSession": SecurityScheme(type="apiKey", security_scheme_in="cookie", name="mercato_session"),
            }
        ),
        use_handler_docstrings=True,
    )
