"""Talking to the app as a browser or an API client does: CSRF tokens, sign-in, forms, URLs."""

from __future__ import annotations

import re
from html import unescape

import sqlalchemy as sa

from app.domain.actors import SYSTEM
from app.persistence.models import User
from app.web.auth import SESSION_COOKIE
from app.web.forms import JobForm
from tests.support.personas import PASSWORD

API = "/api/scheduler"
LIST = "/backend/config/scheduled-jobs"
HTMX = {"HX-Request": "true"}


def url(job_id: str, suffix: str = "") -> str:
    """A schedule's admin page (``suffix``: one of its actions, e.g. ``/edit``)."""
    return f"{LIST}/{job_id}{suffix}"


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def login(client, email: str, password: str = PASSWORD):
    page = await client.get("/login")
    return await client.post(
        "/login", data={"email": email, "password": password, "_csrf": csrf_from(page.text)}, follow_redirects=False
    )


async def as_user(client, runtime, email: str):
    """Give ``client`` a browser session of ``email``, replacing any other.

    The session is opened directly: the login form (and its deliberately slow password hash)
    has its own tests in test_auth.py.
    """
    async with runtime.sessions() as session:
        user_id = await session.scalar(sa.select(User.id).where(User.email == email))
    assert user_id, f"no user {email}"
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, await runtime.credentials.open_session(user_id))
    return client


def form_fields(html: str) -> dict[str, str]:
    """The schedule form's current values, as the browser would submit them."""
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input\b[^>]*>", html):
        name = re.search(r'\bname="([^"]+)"', tag)
        if not name:
            continue
        kind = re.search(r'\btype="([^"]+)"', tag)
        if kind and kind.group(1) == "checkbox":
            if re.search(r"\bchecked\b", tag):
                fields[name.group(1)] = "on"
            continue
        value = re.search(r'\bvalue="([^"]*)"', tag)
        fields[name.group(1)] = unescape(value.group(1)) if value else ""
    for name, body in re.findall(r'<textarea\b[^>]*\bname="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        fields[name] = unescape(body)
    for name, body in re.findall(r'<select\b[^>]*\bname="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)"\s+selected', body)
        fields[name] = unescape(chosen.group(1)) if chosen else ""
    return fields


def new_form(**overrides: str) -> dict[str, str]:
    """A filled-in "new schedule" form (values as strings, the way a browser posts them)."""
    values = dict(JobForm.blank(SYSTEM).values)
    values.update(
        name="Nightly export",
        schedule_type="cron",
        schedule_value="0 9 * * *",
        timezone="Europe/Warsaw",
        target="command:demo.echo",
        target_payload='{"message": "hello"}',
        scope_type="organization",
        is_enabled="on",
    )
    values.update(overrides)
    return values


async def post_form(client, path: str, data: dict[str, str], *, page: str | None = None, **kwargs):
    """POST ``data`` with the CSRF token of ``page`` (or of the list page)."""
    html = (await client.get(page or LIST)).text
    return await client.post(path, data={**data, "_csrf": csrf_from(html)}, **kwargs)
