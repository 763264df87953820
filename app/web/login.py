"""Signing in and out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from app.web.auth import SESSION_COOKIE, new_csrf_seed, runtime_of, session_cookie

HOME = "/backend/config/scheduled-jobs"


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would let a phishing link borrow our login page."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else HOME


def _form_page(
    request: Request[Any, Any, Any], *, email: str = "", error: str | None = None, status: int = 200, next_: str = ""
) -> Template:
    return Template(
        "login.html",
        context={"email": email, "error": error, "next": safe_next(next_ or request.query_params.get("next"))},
        status_code=status,
    )


@get("/login", name="login")
async def login_page(request: Request[Any, Any, Any]) -> Response[Any]:
    if request.state.actor is not None:
        return Redirect(safe_next(request.query_params.get("next")))
    return _form_page(request)


@post("/login", name="login.submit")
async def login_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    runtime = runtime_of(request)
    form = await request.form()
    email = str(form.get("email", ""))[:254].strip()
    password = str(form.get("password", ""))[:1024]
    next_ = str(form.get("next", ""))[:2000]
    throttle = runtime.login_throttle
    # The connecting address, or the one a proxy of TRUSTED_PROXIES forwarded (see create_app).
    address = request.client.host if request.client else "-"
    wait = await throttle.retry_after(address, email)
    if wait:
        minutes = max(1, round(wait / 60))
        return _form_page(
            request,
            email=email,
            status=429,
            next_=next_,
            error=f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        )
    if not email or not password:
        return _form_page(request, email=email, status=422, next_=next_, error="Enter your email and password.")
    user = await runtime.users.authenticate(email, password)
    if user is None:
        await throttle.failed(address, email)
        return _form_page(request, email=email, status=401, next_=next_, error="That email and password do not match.")
    await throttle.succeeded(address, email)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await runtime.credentials.close_session(previous)
    key = await runtime.credentials.open_session(user.id)
    if key is None:  # disabled while the password was being checked
        return _form_page(request, email=email, status=401, next_=next_, error="That email and password do not match.")
    new_csrf_seed(request)
    return Redirect(safe_next(next_), cookies=[session_cookie(request, key)])


@post("/logout", name="logout")
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    key = request.cookies.get(SESSION_COOKIE)
    if key:
        await runtime_of(request).credentials.close_session(key)
    new_csrf_seed(request)
    return Redirect("/login", cookies=[session_cookie(request, None)])


routes = [login_page, login_submit, logout]
