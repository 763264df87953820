"""Flash messages: one-shot notices ("Deleted 'Nightly export'. Undo") for the next page.

They travel in a short-lived cookie signed with ``SECRET_KEY`` (HMAC-SHA256). Browser sessions
are database rows that hold no data, and a signed cookie needs no storage and no cleanup; the
signature means nobody can make the page show text we did not write. The next full page that
renders them clears the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie

COOKIE = "mercato_flash"
MAX_MESSAGES = 5
MAX_AGE = 300


@dataclass(frozen=True)
class Flash:
    text: str
    kind: str = "success"  # success | error | info
    #: Schedule ids an "Undo" button restores (their last change is reverted).
    undo: list[str] = field(default_factory=list)
    #: An optional link after the text: (href, label).
    link: tuple[str, str] | None = None


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), f"flash:{payload}".encode(), hashlib.sha256).hexdigest()


def _secret(request: Request[Any, Any, Any]) -> str:
    secret: str = request.app.state.settings.secret_key
    return secret


def _decode(request: Request[Any, Any, Any]) -> list[Flash]:
    raw = request.cookies.get(COOKIE, "")
    payload, _, signature = raw.partition(".")
    if not payload or not hmac.compare_digest(signature.encode(), _sign(_secret(request), payload).encode()):
        return []
    try:
        items = json.loads(base64.urlsafe_b64decode(payload.encode()))
        return [
            Flash(
                str(i["text"]),
                str(i["kind"]),
                [str(u) for u in i.get("undo", [])],
                tuple(i["link"]) if i.get("link") else None,
            )
            for i in items
        ][:MAX_MESSAGES]
    except (ValueError, KeyError, TypeError):
        return []


def _cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def cookie_with(request: Request[Any, Any, Any], *messages: Flash) -> Cookie:
    """A cookie holding ``messages`` after any not yet shown (a redirect chain keeps them all)."""
    items = [*_decode(request), *messages][-MAX_MESSAGES:]
    payload = base64.urlsafe_b64encode(json.dumps([asdict(m) for m in items]).encode()).decode()
    return _cookie(request, f"{payload}.{_sign(_secret(request), payload)}", MAX_AGE)


def take(request: Request[Any, Any, Any]) -> tuple[list[Flash], Cookie | None]:
    """The pending messages, and the cookie that clears them (None when there were none)."""
    if COOKIE not in request.cookies:
        return [], None
    return _decode(request), _cookie(request, "", 0)
