"""Who is calling: a browser session (with CSRF) or an API bearer token.

``identify`` runs before every handler. It sets ``request.state.actor`` (an ``Actor`` or None),
``request.state.auth`` ("session", "bearer" or None) and ``request.state.csrf_token``, and
refuses unsafe requests made with browser credentials but without the CSRF token (a form field
``_csrf`` or an ``X-CSRF-Token`` header, as htmx sends it). Bearer requests carry no ambient
credentials, so CSRF does not apply to them.

The CSRF token is derived, never stored: an HMAC (``SECRET_KEY``) of the session key for a
signed-in browser, and of a random pre-session value (the ``mercato_csrf`` cookie) before it.
A cookie can be planted by a sibling subdomain, another port or plain http; a token bound to the
session makes a planted value worthless once the victim signs in (a new session, a new token).
Litestar's CSRF middleware is a double-submit cookie (any cookie value the server once minted
is accepted with itself), not bound to a session and not rotated at login, hence our own.
Browsers also say where a request comes from (``Sec-Fetch-Site``): a post from another site,
including a sibling subdomain or another port, is refused whatever token it carries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.domain.actors import Actor
from app.domain.errors import DomainError, Forbidden
from app.runtime import Runtime
from app.web.headers import SECURITY_HEADERS

SESSION_COOKIE = "mercato_session"
CSRF_COOKIE = "mercato_csrf"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: The pre-session value the CSRF cookie holds (as ``secrets.token_urlsafe(32)`` makes it).
CSRF_SEED = re.compile(r"^[A-Za-z0-9_\-]{43}$")
#: ``Sec-Fetch-Site`` values of a request our own pages made (``none``: typed or bookmarked).
OWN_SITE = frozenset({"same-origin", "none"})


class NotAuthenticated(DomainError):
    """No valid session or token: pages redirect to the login, the API answers 401."""


class CsrfRejected(DomainError):
    """An unsafe request with browser credentials lacked a valid CSRF token."""


def runtime_of(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def identify(request: Request[Any, Any, Any]) -> None:
    runtime = runtime_of(request)
    state = request.state
    state.actor, state.user, state.auth = None, None, None
    seed = request.cookies.get(CSRF_COOKIE, "")
    state.csrf_seed = seed if CSRF_SEED.match(seed) else None
    state.new_csrf_cookie = False
    if state.csrf_seed is None:
        new_csrf_seed(request)
    # Set before anything can fail: an error page renders the token too.
    state.csrf_token = _csrf_token(request, "anonymous", state.csrf_seed)

    state.auth_error = None
    authorization = request.headers.get("authorization", "")
    if authorization:
        # A program's credentials: no cookie counts beside them, and a bad one is refused (401)
        # by whatever needs a caller, not here: public routes (health, static, login) still answer.
        scheme, _, secret = authorization.partition(" ")
        user = await runtime.credentials.token_user(secret.strip()) if scheme.lower() == "bearer" else None
        if user is not None:
            state.user, state.auth = user, "bearer"
        elif scheme.lower() != "bearer":
            state.auth_error = "use 'Authorization: Bearer <token>'"
        else:
            state.auth_error = "the API token is invalid or revoked"
    else:
        key = request.cookies.get(SESSION_COOKIE)
        user = await runtime.credentials.session_user(key) if key else None
        if user is not None:
            state.user, state.auth = user, "session"
    if state.user is not None:
        state.actor = await runtime.users.actor_for(state.user)
    if state.auth == "session" and key:
        state.csrf_token = _csrf_token(request, "session", key)
    if request.method not in SAFE_METHODS and not authorization:
        # Only ambient credentials (cookies) can be borrowed by a forged request.
        await _check_csrf(request)


def new_csrf_seed(request: Request[Any, Any, Any]) -> None:
    """A new pre-session value (sent as the CSRF cookie): at login and logout, so a token seen
    on one side of either is no use on the other."""
    request.state.csrf_seed = secrets.token_urlsafe(32)
    request.state.new_csrf_cookie = True


def _csrf_token(request: Request[Any, Any, Any], kind: str, value: str) -> str:
    key = request.app.state.settings.secret_key.encode()
    mac = hmac.new(key, f"mercato-csrf:{kind}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def masked_csrf_token(request: Request[Any, Any, Any]) -> str:
    """The CSRF token as a page shows it: XORed with a fresh random pad, the pad in front.

    Different on every render, so a compressed page that also reflects what an attacker typed
    gives nothing away through its length (BREACH); ``_check_csrf`` takes the pad off again.
    """
    token = _b64decode(getattr(request.state, "csrf_token", ""))
    if not token:  # a page for a request no handler took (404): no form on it works anyway
        return ""
    pad = secrets.token_bytes(len(token))
    masked = pad + bytes(a ^ b for a, b in zip(token, pad, strict=True))
    return base64.urlsafe_b64encode(masked).rstrip(b"=").decode()


def _unmask(sent: str) -> str:
    masked = _b64decode(sent)
    half = len(masked) // 2
    if half == 0 or len(masked) != 2 * half:
        return ""
    token = bytes(a ^ b for a, b in zip(masked[half:], masked[:half], strict=True))
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


def _b64decode(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        return b""


async def _check_csrf(request: Request[Any, Any, Any]) -> None:
    expected = request.state.csrf_token
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.content_type[0] in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    fetch_site = request.headers.get("sec-fetch-site")
    from_elsewhere = fetch_site is not None and fetch_site.lower() not in OWN_SITE
    if from_elsewhere or not sent or not hmac.compare_digest(_unmask(sent).encode(), expected.encode()):
        raise CsrfRejected("the form expired or came from another site; reload the page and try again")


def require(request: Request[Any, Any, Any], feature: str | None = None) -> Actor:
    """The calling actor, who must be signed in and (optionally) hold ``feature``."""
    actor: Actor | None = request.state.actor
    if actor is None:
        raise NotAuthenticated(request.state.auth_error or "sign in to continue")
    if feature and not actor.can(feature):
        raise Forbidden(f"you need the '{feature}' permission")
    return actor


def session_cookie(request: Request[Any, Any, Any], key: str | None) -> Cookie:
    secure = request.url.scheme == "https"
    if key is None:
        return Cookie(key=SESSION_COOKIE, value="", max_age=0, httponly=True, samesite="lax", secure=secure, path="/")
    return Cookie(key=SESSION_COOKIE, value=key, httponly=True, samesite="lax", secure=secure, path="/")


def security_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: security headers on every response, and the CSRF cookie when minted."""
    from http.cookies import SimpleCookie

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        if not _is_utf8(scope.get("query_string", b"")):
            # Litestar decodes the query string as UTF-8 wherever it builds the request's URL
            # (error handlers too), so such a request could only end in a 500.
            await _bad_request(send, "the query string is not UTF-8 text (percent-encode it)")
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                state = scope.get("state", {})
                if state.get("new_csrf_cookie"):
                    cookie = SimpleCookie()
                    cookie[CSRF_COOKIE] = state["csrf_seed"]
                    morsel = cookie[CSRF_COOKIE]
                    morsel["path"], morsel["httponly"], morsel["samesite"] = "/", True, "Lax"
                    if scope.get("scheme") == "https":
                        morsel["secure"] = True
                    headers.append((b"set-cookie", morsel.OutputString().encode()))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def _bad_request(send: Send, detail: str) -> None:
    body = f"Bad request: {detail}\n".encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
