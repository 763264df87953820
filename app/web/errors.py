"""Domain and HTTP errors, mapped once: a JSON problem under /api, an HTML page elsewhere."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DBAPIError

from app.domain.errors import Conflict, DomainError, Forbidden, NotFound, ValidationError
from app.persistence.database import is_transient
from app.web.auth import CsrfRejected, NotAuthenticated
from app.web.headers import SECURITY_HEADERS

log = logging.getLogger("mercato.web")

TITLES = {
    400: "Bad request",
    401: "Sign in required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
}


def is_api(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/")


def problem(
    status: int, detail: str, *, errors: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    # Error responses for unmatched routes skip route middleware: add the headers here too.
    return Response(
        body, status_code=status, media_type="application/problem+json", headers={**SECURITY_HEADERS, **(headers or {})}
    )


def error_page(
    request: Request[Any, Any, Any], status: int, detail: str, *, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Template(
        "error.html",
        context={"status": status, "title": TITLES.get(status, "Error"), "detail": detail, "request": request},
        status_code=status,
        media_type=MediaType.HTML,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def domain_error_status(exc: DomainError) -> int:
    return {
        ValidationError: 422,
        NotFound: 404,
        Forbidden: 403,
        Conflict: 409,
        NotAuthenticated: 401,
        CsrfRejected: 403,
    }.get(type(exc), 400)


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    status = domain_error_status(exc)
    if is_api(request):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return problem(status, str(exc), errors=getattr(exc, "errors", None), headers=headers)
    if isinstance(exc, NotAuthenticated):
        if request.headers.get("authorization"):
            # A program with a bad token: a login page is of no use to it.
            return error_page(request, 401, str(exc))
        if request.headers.get("hx-request"):
            return Response("", status_code=401, headers={"HX-Redirect": "/login"})
        return Redirect(f"/login?next={quote(request.url.path)}")
    return error_page(request, status, str(exc))


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = exc.detail if status < 500 else TITLES[500]
    if isinstance(exc, ValidationException):
        detail = "some parameters are invalid"
        extra = getattr(exc, "extra", None)
        errors = {
            str(e.get("key") or e.get("source") or "request"): str(e.get("message"))
            for e in (extra if isinstance(extra, list) else [])
            if isinstance(e, dict)
        }
        if is_api(request):
            return problem(400, detail, errors=errors or None)
    if is_api(request):
        return problem(status, detail, headers=getattr(exc, "headers", None))
    return error_page(request, status, detail)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_transient(exc) and isinstance(exc, (DBAPIError, ConnectionError)):
        # The database restarted or failed over: its connections are dropped and the next
        # request opens new ones. Say so, instead of "something went wrong".
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        detail = "the database is unavailable for a moment; try again"
        headers = {"Retry-After": "1"}
        if is_api(request):
            return problem(503, detail, headers=headers)
        return error_page(request, 503, "The database is unavailable for a moment; try again.", headers=headers)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if is_api(request):
        return problem(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error happened; it has been logged")
    return error_page(request, 500, "An unexpected error happened; it has been logged.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: handle_domain_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}
