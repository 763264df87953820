"""CSRF: every unsafe route refuses a browser-session request without the right token.

The routes come from the app's route table (every method but GET, HEAD and OPTIONS), so a new
form or API call cannot ship unprotected. A forged request carries the victim's cookies but not
the token the page holds: missing, empty, made up, or another browser's. Each is refused (403)
and changes nothing.
"""

from __future__ import annotations

import secrets

import pytest
import sqlalchemy as sa

from app.persistence.models import AuditEntry, ScheduledJobRun, WebSession
from tests.reliability.test_authorization_matrix import app_routes
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.http import LIST, csrf_from, login

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    """Both backends (the folder's default is PostgreSQL only): sessions, and so the tokens
    bound to them, live in the database."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


async def _state(app_runtime) -> tuple[int, int, int]:
    async with app_runtime.sessions() as session:
        counts = [
            await session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (AuditEntry, ScheduledJobRun, WebSession)
        ]
    return tuple(counts)


async def test_every_unsafe_route_refuses_a_session_request_without_its_csrf_token(
    client, shared_app, app_runtime, sign_in
):
    job = await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    await app_runtime.scheduler.update(job.id, {"description": "something to undo"})
    run = await app_runtime.scheduler.trigger(job.id)
    routes = sorted(r for r in app_routes(shared_app) if r.split()[0] in UNSAFE)
    assert len(routes) >= 18, routes  # the forms, the bulk action, login, logout and the API

    await sign_in("owner@acme.test")
    real = csrf_from((await client.get("/backend/config/scheduled-jobs/new")).text)
    other_browser = secrets.token_urlsafe(32)
    before = await _state(app_runtime)
    forged = {
        "no token": ({}, {}),
        "empty token": ({"X-CSRF-Token": ""}, {"_csrf": ""}),
        "made-up token": ({"X-CSRF-Token": "x" * 43}, {"_csrf": "x" * 43}),
        "another browser's token": ({"X-CSRF-Token": other_browser}, {"_csrf": other_browser}),
        "a prefix of the real one": ({"X-CSRF-Token": real[:20]}, {"_csrf": real[:20]}),
    }
    for key in routes:
        method, path = key.split(" ", 1)
        url = path.replace("{job_id:str}", job.id).replace("{run_id:str}", run.id)
        for case, (headers, fields) in forged.items():
            data = {
                "ids": job.id,
                "action": "delete",
                "confirmed": "yes",
                "email": "owner@acme.test",
                "password": "correct horse battery staple",
                "name": "forged",
                **fields,
            }
            if path.startswith("/api/"):
                response = await client.request(method, url, headers=headers, json={"name": "forged"})
            else:
                response = await client.request(method, url, headers=headers, data=data)
            assert response.status_code == 403, (key, case, response.status_code)
            assert "reload the page" in response.text, (key, case)
    assert await _state(app_runtime) == before, "a refused request changed something"
    assert (await client.get("/backend/config/scheduled-jobs")).status_code == 200, "still signed in"


async def test_the_token_is_bound_to_the_browser_not_guessable_and_not_readable_by_scripts(client):
    first = await client.get("/login")
    cookie = first.headers["set-cookie"]
    assert "mercato_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    token = csrf_from(first.text)
    # The cookie holds a random pre-session value; the page's token is derived from it (and the
    # server's secret), so neither can be made up from the other.
    assert len(token) >= 32 and client.cookies.get("mercato_csrf") not in (None, token)
    # Masked afresh on every page, so that a compressed page gives nothing away by its length
    # (BREACH); the same browser's earlier pages keep working.
    second = csrf_from((await client.get("/login")).text)
    assert second != token and len(second) == len(token)
    stays = await client.post("/login", data={"email": "owner@acme.test", "password": "wrong", "_csrf": token})
    assert stays.status_code != 403 and "reload the page" not in stays.text
    # Another browser's token is worth nothing here.
    client.cookies.clear()
    await client.get("/login")
    refused = await client.post("/login", data={"email": "owner@acme.test", "password": "wrong", "_csrf": token})
    assert refused.status_code == 403 and "reload the page" in refused.text


async def test_a_csrf_cookie_planted_before_login_lets_no_forged_post_through(client, app_runtime):
    """A sibling subdomain, another port or plain http can set our cookie before the victim signs
    in; the value it chose must be worth nothing once the victim has a session."""
    job = await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    planted = "planted-by-a-sibling-subdomain-0123456789"
    client.cookies.set("mercato_csrf", planted)
    assert (await login(client, "owner@acme.test")).status_code in (302, 303)

    forged = await client.post(f"{LIST}/{job.id}/disable", data={"_csrf": planted})
    assert forged.status_code == 403 and "reload the page" in forged.text
    forged_htmx = await client.post(f"{LIST}/{job.id}/disable", headers={"X-CSRF-Token": planted})
    assert forged_htmx.status_code == 403
    assert (await app_runtime.scheduler.get(job.id)).is_enabled


async def test_the_token_of_the_login_page_is_refused_after_login(client, app_runtime):
    job = await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    before = csrf_from((await client.get("/login")).text)
    assert (await login(client, "owner@acme.test")).status_code in (302, 303)

    stale = await client.post(f"{LIST}/{job.id}/disable", data={"_csrf": before})
    assert stale.status_code == 403 and (await app_runtime.scheduler.get(job.id)).is_enabled
    # The signed-in page's token works, in the form field and in htmx's header.
    after = csrf_from((await client.get(LIST)).text)
    assert after != before
    assert (await client.post(f"{LIST}/{job.id}/disable", data={"_csrf": after})).status_code in (302, 303)
    assert (await client.post(f"{LIST}/{job.id}/enable", headers={"X-CSRF-Token": after})).status_code in (302, 303)


async def test_the_token_is_bound_to_the_session_and_ends_with_it(client, app_runtime):
    """Two sessions of one user have different tokens, and after logout the old one is refused."""
    job = await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    await login(client, "owner@acme.test")
    first = csrf_from((await client.get(LIST)).text)
    await client.post("/logout", data={"_csrf": first})
    await login(client, "owner@acme.test")
    second = csrf_from((await client.get(LIST)).text)
    assert second != first
    assert (await client.post(f"{LIST}/{job.id}/disable", data={"_csrf": first})).status_code == 403


async def test_a_browser_saying_the_post_came_from_another_site_is_refused(client, app_runtime):
    """Browsers tell where a request comes from (Sec-Fetch-Site): a form posted from a sibling
    subdomain or another port is refused even with a token the attacker managed to learn."""
    job = await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    await login(client, "owner@acme.test")
    token = csrf_from((await client.get(LIST)).text)
    for origin in ("same-site", "cross-site"):
        response = await client.post(
            f"{LIST}/{job.id}/disable", data={"_csrf": token}, headers={"Sec-Fetch-Site": origin}
        )
        assert response.status_code == 403, origin
    assert (await app_runtime.scheduler.get(job.id)).is_enabled
    ours = await client.post(
        f"{LIST}/{job.id}/disable", data={"_csrf": token}, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert ours.status_code in (302, 303)
