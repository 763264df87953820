"""CSRF: every unsafe route refuses a browser-session request without the right token.

The routes come from the app's route table (every method but GET, HEAD and OPTIONS), so a new
form or API call cannot ship unprotected. A forged request carries the victim's cookies but not
the token the page holds: missing, empty, made up, or another browser's. Each is refused (403)
and changes nothing.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from app.persistence.models import AuditEntry, ScheduledJobRun, WebSession
from tests.reliability.conftest import acme_job, csrf_from
from tests.reliability.test_authorization_matrix import app_routes

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


async def _state(app_runtime) -> tuple[int, int, int]:
    async with app_runtime.sessions() as session:
        counts = [await session.scalar(sa.select(sa.func.count()).select_from(model))
                  for model in (AuditEntry, ScheduledJobRun, WebSession)]
    return tuple(counts)


async def test_every_unsafe_route_refuses_a_session_request_without_its_csrf_token(client, shared_app, app_runtime, sign_in):
    job = await app_runtime.scheduler.create(acme_job())
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
            data = {"ids": job.id, "action": "delete", "confirmed": "yes", "email": "owner@acme.test",
                    "password": "correct horse battery staple", "name": "forged", **fields}
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
    assert len(token) >= 32 and token == client.cookies.get("mercato_csrf")
    # The same browser keeps its token; another browser gets another one.
    assert csrf_from((await client.get("/login")).text) == token
    client.cookies.clear()
    assert csrf_from((await client.get("/login")).text) != token
