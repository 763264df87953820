"""Every route of the app × every kind of caller, with the answer each must get.

The routes come from the Litestar app's own route table: a route added without a row in
``ROUTES`` fails ``test_every_route_of_the_app_has_a_row``, so none can be forgotten. Callers:
anonymous, view-only (employee), manager (admin role), trigger-only (operator role), an admin of
another tenant, an admin of the same tenant's other organization, a superadmin (all with a browser
session and its CSRF token), an API token, and a revoked one.

The schedule under test belongs to tenant ``acme``, organization ``acme-eu``. Outside that scope
it does not exist (404), and after every route has been called by an outsider it is exactly as it
was: nothing of it visible, changed or triggered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app.domain.transfer import dump_schedules
from app.persistence.models import AuditEntry, ScheduledJob, ScheduledJobRun
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.http import API, LIST, csrf_from, login
from tests.support.personas import OTHER_ORG, PASSWORD

PERSONAS = {
    "anonymous": None,
    "viewer": "viewer@acme.test",
    "manager": "owner@acme.test",
    "operator": "operator@acme.test",
    "other tenant": "owner@globex.test",
    "other organization": OTHER_ORG,
    "superadmin": "root@example.com",
    "bearer token": "owner@acme.test",
    "revoked token": "owner@acme.test",
}
SIGNED_IN = ("viewer", "manager", "operator", "other tenant", "other organization", "superadmin", "bearer token")
OUTSIDERS = ("other tenant", "other organization")
MANAGERS = ("manager", "superadmin", "bearer token")


@dataclass(frozen=True)
class Route:
    """How to call a route and who gets what. ``rule`` maps a persona to its expected status."""

    method: str
    path: str  # the route table's path, {params} filled from the scene
    rule: Callable[[str], int]
    body: Callable[[dict], dict] | None = None


def page(ok: int, *, need: tuple[str, ...] = SIGNED_IN, scoped: bool = False, outsider: int | None = None):
    """A page: anonymous callers are sent to the login (302), a bad API token gets 401; a
    signed-in caller without the permission gets 403; ``scoped``: outside the schedule's scope
    it is 404."""
    return _rule(ok, need, scoped, outsider, unauthenticated=302)


def api(ok: int, *, need: tuple[str, ...] = SIGNED_IN, scoped: bool = False, outsider: int | None = None):
    return _rule(ok, need, scoped, outsider, unauthenticated=401)


def _rule(ok, need, scoped, outsider, *, unauthenticated):
    def expected(persona: str) -> int:
        if persona == "anonymous":
            return unauthenticated
        if persona == "revoked token":
            return 401  # a program: no login page for it
        if persona in OUTSIDERS and (scoped or outsider is not None):
            return 404 if scoped else outsider
        return ok if persona in need else 403

    return expected


def public(ok: int):
    """Anyone, whatever credentials come along (a probe or a browser with a stale token too)."""
    return lambda persona: ok


VIEW = (*MANAGERS, "viewer", "operator", *OUTSIDERS)
TRIGGER = (*MANAGERS, "operator", *OUTSIDERS)
MANAGE = (*MANAGERS, *OUTSIDERS)


def form(scene: dict, **fields) -> dict:
    return {"data": {**fields}}


def job_form(scene: dict) -> dict:
    return {
        "data": {
            "name": "Made in the form",
            "schedule_type": "cron",
            "schedule_value": "0 * * * *",
            "timezone": "UTC",
            "target": "command:demo.echo",
            "target_payload": "{}",
            "scope_type": "organization",
            "tenant_id": "acme",
            "organization_id": "acme-eu",
            "catch_up_policy": "latest",
            "catch_up_window_seconds": "86400",
            "overlap_policy": "allow",
            "jitter_seconds": "0",
            "max_retries": "0",
            "retry_backoff_seconds": "30",
            "is_enabled": "on",
        }
    }


def edit_form(scene: dict) -> dict:
    data = job_form(scene)["data"]
    return {"data": {**data, "name": "Edited in the form", "version": str(scene["page_version"])}}


NEW_JOB = {
    "name": "Made by the API",
    "scheduleValue": "0 * * * *",
    "scopeType": "organization",
    "tenantId": "acme",
    "organizationId": "acme-eu",
    "targetType": "command",
    "targetCommand": "demo.echo",
}

# In an order where no call spoils a later one: reads, then changes, undo, and deletes last.
ROUTES: dict[str, Route] = {
    # Signing in and out, and what anyone may read.
    "GET /login": Route("GET", "/login", lambda p: 200 if p in ("anonymous", "revoked token") else 302),
    "GET /": Route("GET", "/", public(302)),
    "GET /healthz": Route("GET", "/healthz", public(200)),
    "GET /readyz": Route("GET", "/readyz", public(200)),
    "GET /static/{name:str}": Route("GET", "/static/app.css", public(200)),
    "GET /favicon.ico": Route("GET", "/favicon.ico", public(200)),
    "GET /schema": Route("GET", "/schema", public(200)),
    "GET /schema/openapi.json": Route("GET", "/schema/openapi.json", public(200)),
    "GET /schema/openapi.yaml": Route("GET", "/schema/openapi.yaml", public(200)),
    "GET /schema/{path:str}": Route("GET", "/schema/swagger", public(404)),
    "GET /metrics": Route(
        "GET", "/metrics", lambda p: {"anonymous": 401, "revoked token": 401, "superadmin": 200}.get(p, 403)
    ),
    # Admin pages.
    f"GET {LIST}": Route("GET", LIST, page(200, need=VIEW)),
    f"GET {LIST}/new": Route("GET", f"{LIST}/new", page(200, need=MANAGE)),
    f"GET {LIST}/runs": Route("GET", f"{LIST}/runs?status=failed&since=7d", page(200, need=VIEW)),
    f"GET {LIST}/preview": Route("GET", f"{LIST}/preview?schedule_value=*/5%20*%20*%20*%20*", page(200, need=VIEW)),
    f"GET {LIST}/target": Route("GET", f"{LIST}/target?target=command:demo.echo", page(200, need=VIEW)),
    f"GET {LIST}/deleted": Route("GET", f"{LIST}/deleted?q=Report", page(200, need=VIEW)),
    f"GET {LIST}/{{job_id:str}}": Route("GET", f"{LIST}/{{page_job}}", page(200, need=VIEW, scoped=True)),
    f"GET {LIST}/{{job_id:str}}/edit": Route("GET", f"{LIST}/{{page_job}}/edit", page(200, need=MANAGE, scoped=True)),
    f"GET {LIST}/{{job_id:str}}/delete": Route(
        "GET", f"{LIST}/{{page_job}}/delete", page(200, need=MANAGE, scoped=True)
    ),
    f"GET {LIST}/{{job_id:str}}/runs/{{run_id:str}}": Route(
        "GET", f"{LIST}/{{page_job}}/runs/{{page_run}}", page(200, need=VIEW, scoped=True)
    ),
    f"GET {LIST}/processes": Route("GET", f"{LIST}/processes", page(200, need=VIEW)),
    f"GET {LIST}/{{job_id:str}}/runs/{{run_id:str}}/logs": Route(
        "GET", f"{LIST}/{{page_job}}/runs/{{page_run}}/logs", page(200, need=VIEW, scoped=True)
    ),
    f"POST {LIST}/new": Route("POST", f"{LIST}/new", page(303, need=MANAGE), job_form),
    f"POST {LIST}/{{job_id:str}}/edit": Route(
        "POST", f"{LIST}/{{page_job}}/edit", page(303, need=MANAGE, scoped=True), edit_form
    ),
    f"POST {LIST}/{{job_id:str}}/disable": Route(
        "POST",
        f"{LIST}/{{page_job}}/disable",
        page(303, need=MANAGE, scoped=True),
        lambda s: form(s, note="maintenance"),
    ),
    f"POST {LIST}/{{job_id:str}}/enable": Route(
        "POST", f"{LIST}/{{page_job}}/enable", page(303, need=MANAGE, scoped=True), form
    ),
    f"POST {LIST}/{{job_id:str}}/run": Route(
        "POST", f"{LIST}/{{page_job}}/run", page(303, need=TRIGGER, scoped=True), form
    ),
    f"GET {LIST}/{{job_id:str}}/run": Route("GET", f"{LIST}/{{page_job}}/run", page(200, need=TRIGGER, scoped=True)),
    f"POST {LIST}/{{job_id:str}}/runs/{{run_id:str}}/cancel": Route(
        "POST", f"{LIST}/{{page_job}}/runs/{{page_run}}/cancel", page(303, need=TRIGGER, scoped=True), form
    ),
    # Bulk answers with a redirect and a flash saying which could not be changed (checked below).
    f"POST {LIST}/bulk": Route(
        "POST",
        f"{LIST}/bulk",
        page(303, need=MANAGE),
        lambda s: {"data": {"action": "disable", "ids": [s["page_job"], s["api_job"]]}},
    ),
    f"POST {LIST}/{{job_id:str}}/undo": Route(
        "POST", f"{LIST}/{{page_job}}/undo", page(303, need=MANAGE, scoped=True), form
    ),
    f"POST {LIST}/{{job_id:str}}/delete": Route(
        "POST", f"{LIST}/{{page_job}}/delete", page(303, need=MANAGE, scoped=True), form
    ),
    # Restored right after its delete above (by those who could delete it).
    f"POST {LIST}/{{job_id:str}}/restore": Route(
        "POST", f"{LIST}/{{page_job}}/restore", page(303, need=MANAGE, scoped=True), form
    ),
    # The JSON API.
    f"GET {API}/jobs": Route("GET", f"{API}/jobs", api(200, need=VIEW)),
    f"GET {API}/jobs/{{job_id:str}}": Route("GET", f"{API}/jobs/{{api_job}}", api(200, need=VIEW, scoped=True)),
    f"GET {API}/jobs/{{job_id:str}}/runs": Route(
        "GET", f"{API}/jobs/{{api_job}}/runs", api(200, need=VIEW, scoped=True)
    ),
    f"GET {API}/runs/{{run_id:str}}": Route("GET", f"{API}/runs/{{api_run}}", api(200, need=VIEW, scoped=True)),
    f"GET {API}/runs": Route("GET", f"{API}/runs?since=1h", api(200, need=VIEW)),
    f"GET {API}/runs/{{run_id:str}}/logs": Route(
        "GET", f"{API}/runs/{{api_run}}/logs", api(200, need=VIEW, scoped=True)
    ),
    f"GET {API}/jobs/{{job_id:str}}/audit": Route(
        "GET", f"{API}/jobs/{{api_job}}/audit", api(200, need=VIEW, scoped=True)
    ),
    f"GET {API}/trash": Route("GET", f"{API}/trash?search=Report", api(200, need=VIEW)),
    f"GET {API}/targets": Route("GET", f"{API}/targets", api(200, need=VIEW)),
    f"GET {API}/preview": Route("GET", f"{API}/preview?scheduleValue=*/15%20*%20*%20*%20*", api(200, need=VIEW)),
    f"GET {API}/export": Route("GET", f"{API}/export", api(200, need=VIEW)),
    f"GET {API}/processes": Route("GET", f"{API}/processes", api(200, need=VIEW)),
    f"GET {API}/health": Route("GET", f"{API}/health", api(200, need=VIEW)),
    # Writing into acme-eu from outside it is refused as invalid input (the body names the scope).
    f"POST {API}/import": Route(
        "POST",
        f"{API}/import?dryRun=true",
        api(200, need=MANAGE, outsider=422),
        lambda s: {"content": s["import"], "headers": {"Content-Type": "application/yaml"}},
    ),
    f"POST {API}/jobs": Route("POST", f"{API}/jobs", api(201, need=MANAGE, outsider=422), lambda s: {"json": NEW_JOB}),
    f"PATCH {API}/jobs/{{job_id:str}}": Route(
        "PATCH", f"{API}/jobs/{{api_job}}", api(200, need=MANAGE, scoped=True), lambda s: {"json": {"name": "Renamed"}}
    ),
    f"POST {API}/jobs/{{job_id:str}}/disable": Route(
        "POST", f"{API}/jobs/{{api_job}}/disable", api(200, need=MANAGE, scoped=True), lambda s: {"json": {"note": "x"}}
    ),
    f"POST {API}/jobs/{{job_id:str}}/enable": Route(
        "POST", f"{API}/jobs/{{api_job}}/enable", api(200, need=MANAGE, scoped=True)
    ),
    f"POST {API}/jobs/{{job_id:str}}/trigger": Route(
        "POST",
        f"{API}/jobs/{{api_job}}/trigger",
        api(202, need=TRIGGER, scoped=True),
        lambda s: {"json": {"payload": {"period": "week"}}},
    ),
    f"POST {API}/runs/{{run_id:str}}/cancel": Route(
        "POST", f"{API}/runs/{{api_run}}/cancel", api(200, need=TRIGGER, scoped=True)
    ),
    f"POST {API}/jobs/{{job_id:str}}/undo": Route(
        "POST", f"{API}/jobs/{{api_job}}/undo", api(200, need=MANAGE, scoped=True)
    ),
    f"DELETE {API}/jobs/{{job_id:str}}": Route("DELETE", f"{API}/jobs/{{api_job}}", api(204, need=MANAGE, scoped=True)),
    f"POST {API}/jobs/{{job_id:str}}/restore": Route(
        "POST", f"{API}/jobs/{{api_job}}/restore", api(200, need=MANAGE, scoped=True)
    ),
    # Last: signing out ends the session (a later page would need a new sign-in).
    "POST /login": Route("POST", "/login", lambda p: 422, lambda s: {"data": {"email": "", "password": ""}}),
    "POST /logout": Route("POST", "/logout", lambda p: 302),
}


def app_routes(app) -> set[str]:
    return {
        f"{method} {route.path}"
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method not in ("OPTIONS", "HEAD")
    }


def test_every_route_of_the_app_has_a_row(shared_app):
    missing = sorted(app_routes(shared_app) - set(ROUTES))
    assert missing == [], f"routes without an authorization row: {missing}"
    assert sorted(set(ROUTES) - app_routes(shared_app)) == []


@pytest.fixture
async def scene(app_runtime):
    """Two acme-eu schedules (one for the pages, one for the API), each edited once (so there is
    something to undo) and run once."""
    scheduler = app_runtime.scheduler
    made = {}
    for key in ("page", "api"):
        job = await scheduler.create(
            job_definition(DAILY_SALES_REPORT, id=f"reports:{key}:acme-eu", name=f"Report for {key}")
        )
        job = await scheduler.update(job.id, {"description": "edited once"})
        run = await scheduler.trigger(job.id)
        made.update({f"{key}_job": job.id, f"{key}_run": run.id, f"{key}_version": job.version})
    made["import"] = dump_schedules([await scheduler.get(made["api_job"])]).encode()
    return made


async def caller(client, app_runtime, persona: str) -> dict[str, str]:
    """Sign the persona in; returns the headers its requests carry."""
    email = PERSONAS[persona]
    if persona in ("bearer token", "revoked token"):
        user = await app_runtime.credentials.user_by_email(email)
        token = await app_runtime.credentials.issue_token(user.id, "matrix")
        if persona == "revoked token":
            await app_runtime.credentials.revoke_token(token.token.id)
        return {"Authorization": f"Bearer {token.secret}"}
    if email:
        assert (await login(client, email, PASSWORD)).status_code in (302, 303)
    return {}


async def call(client, scene, route: Route, headers: dict) -> int:
    url = route.path.format(**scene)
    extra = route.body(scene) if route.body else {}
    if route.method not in ("GET", "HEAD") and "Authorization" not in headers:
        # A browser session sends its CSRF token with every unsafe request (htmx as a header,
        # forms as a field); the CSRF test checks what happens without it.
        # (The login page sends a signed-in browser on to the list: either page shows its token.)
        token = csrf_from((await client.get("/login", follow_redirects=True)).text)
        headers = {**headers, "X-CSRF-Token": token}
        if "data" in extra or route.body is None:
            extra = {**extra, "data": {**extra.get("data", {}), "_csrf": token}}
    extra_headers = extra.pop("headers", {})
    response = await client.request(route.method, url, headers={**headers, **extra_headers}, **extra)
    return response.status_code


async def outsider_view(app_runtime, scene) -> tuple:
    """What an outsider must not have touched: the schedules, their runs and their audit trail."""
    ids = [scene["page_job"], scene["api_job"]]
    async with app_runtime.sessions() as session:
        audit = list(
            await session.scalars(sa.select(AuditEntry.actor).where(AuditEntry.job_id.in_(ids)).order_by(AuditEntry.id))
        )
        runs = (
            await session.execute(
                sa.select(ScheduledJobRun.id, ScheduledJobRun.status)
                .where(ScheduledJobRun.job_id.in_(ids))
                .order_by(ScheduledJobRun.id)
            )
        ).all()
    jobs = [
        (j.name, j.version, j.is_enabled, j.deleted_at)
        for j in [await app_runtime.scheduler.get(scene[k]) for k in ("page_job", "api_job")]
    ]
    return audit, runs, jobs


@pytest.mark.parametrize("persona", list(PERSONAS))
async def test_each_caller_gets_exactly_their_answer_on_every_route(client, app_runtime, scene, persona):
    headers = await caller(client, app_runtime, persona)
    before = await outsider_view(app_runtime, scene)
    got = {key: await call(client, scene, route, headers) for key, route in ROUTES.items()}
    expected = {key: route.rule(persona) for key, route in ROUTES.items()}
    wrong = {key: f"got {got[key]}, expected {expected[key]}" for key in ROUTES if got[key] != expected[key]}
    assert wrong == {}, wrong
    if persona in OUTSIDERS or persona in ("anonymous", "revoked token", "viewer"):
        after = await outsider_view(app_runtime, scene)
        assert after == before, "an outsider changed, ran or deleted a schedule not theirs"


@pytest.mark.parametrize("persona", OUTSIDERS)
async def test_another_scopes_schedule_never_shows_in_lists_searches_exports_or_pages(
    client, app_runtime, scene, persona
):
    await caller(client, app_runtime, persona)
    secret_names = ("Report for page", "Report for api", scene["page_job"], scene["api_job"])
    for url in (
        LIST,
        f"{LIST}?search=Report",
        f"{LIST}?search=acme-eu",
        f"{API}/jobs",
        f"{API}/jobs?search=Report",
        f"{API}/export",
        f"{API}/export?tenantId=acme",
        f"{LIST}/runs",
        f"{LIST}/runs?q=Report",
        f"{LIST}/runs?tenant=acme",
        f"{API}/runs",
        f"{API}/runs?search=Report",
        f"{API}/runs?tenantId=acme&organizationId=acme-eu",
        f"{API}/runs?jobId={scene['page_job']}",
    ):
        text = (await client.get(url)).text
        assert not any(name in text for name in secret_names), url


# ----- Across scopes: ids of live and deleted rows, runs and audit entries of other scopes, and
# targets not schedulable in the caller's scope, tried on every route --------------------------

#: Rows of tenant t2 (which no persona but the superadmin can see): a live schedule, a deleted
#: one, a superadmin's deleted system schedule, each with a run; and, on the acme schedule, a run
#: and an audit entry of t2 (as a takeover of its id before this was closed would have left).
FOREIGN_JOBS = ("foreign_live", "foreign_deleted", "system_deleted")
NOT_SUPERADMIN = tuple(p for p in SIGNED_IN if p != "superadmin")
CLEANUP = "scheduler.history.cleanup"


def by_id(route_key: str) -> bool:
    return "{job_id" in route_key or "{run_id" in route_key


#: How each route without an id in its path is tried across scopes, or why it cannot be:
#: "listing": what it shows never names another scope's rows; "health": another scope's running
#: runs are not counted and its overdue work is not reported (processes are shared, not scoped);
#: "create": an id of another scope in the body is refused as not available; "targets": what it offers never includes a
#: target the caller may not schedule; "bulk": ids of other scopes are refused one by one and
#: nothing of theirs changes; anything else says why no scoped row is involved.
ACROSS_SCOPES = {
    "GET /login": "no scoped data: the sign-in form",
    "GET /": "no scoped data: a redirect",
    "GET /healthz": "no scoped data: liveness",
    "GET /readyz": "no scoped data: readiness",
    "GET /static/{name:str}": "no scoped data: static files",
    "GET /favicon.ico": "no scoped data: the icon",
    "GET /schema": "no scoped data: the OpenAPI document",
    "GET /schema/openapi.json": "no scoped data: the OpenAPI document",
    "GET /schema/openapi.yaml": "no scoped data: the OpenAPI document",
    "GET /schema/{path:str}": "no scoped data: the OpenAPI document",
    "GET /metrics": "superadmins only (matrix above): totals across every scope are theirs",
    f"GET {LIST}": "listing",
    f"GET {LIST}/runs": "listing",
    f"GET {LIST}/new": "targets",
    f"GET {LIST}/deleted": "listing",
    f"GET {LIST}/preview": "no scoped data: describes a schedule expression",
    f"GET {LIST}/target": "targets",
    f"POST {LIST}/new": "targets",  # the form has no id field: its ids are generated
    f"POST {LIST}/bulk": "bulk",
    f"GET {API}/jobs": "listing",
    f"GET {API}/runs": "listing",
    f"GET {API}/trash": "listing",
    f"GET {API}/targets": "targets",
    f"GET {API}/preview": "no scoped data: describes a schedule expression",
    f"GET {API}/export": "listing",
    f"GET {LIST}/processes": "health",
    f"GET {API}/processes": "health",
    f"GET {API}/health": "health",
    f"POST {API}/import": "create",
    f"POST {API}/jobs": "create",
    "POST /login": "no scoped data: signing in",
    "POST /logout": "no scoped data: signing out",
}


def test_every_route_is_tried_across_scopes():
    """A route added later must say how it is tried across scopes (or why it cannot be)."""
    unplaced = sorted(key for key in ROUTES if not by_id(key) and key not in ACROSS_SCOPES)
    assert unplaced == [], f"routes with no cross-scope rule: {unplaced}"


@pytest.fixture
async def foreign(app_runtime, scene):
    """Tenant t2's rows, and t2's run and audit entry stuck on acme's API schedule."""
    from app.domain.actors import SYSTEM
    from app.domain.ids import new_id

    scheduler = app_runtime.scheduler
    made = {}
    for key, scope in (
        ("foreign_live", "organization"),
        ("foreign_deleted", "organization"),
        ("system_deleted", "system"),
    ):
        data = {
            **job_definition(
                DAILY_SALES_REPORT, id=f"t2:{key}", name=f"Secret {key}", target_payload={"secret": "t2-payload"}
            ),
            "scope_type": scope,
            "tenant_id": "t2" if scope != "system" else None,
            "organization_id": "org-9" if scope != "system" else None,
        }
        job = await scheduler.create(data)
        run = await scheduler.trigger(job.id)
        if key != "foreign_live":
            await scheduler.delete(job.id)
        made[key], made[f"{key}_run"] = job.id, run.id
    stray_run = ScheduledJobRun(
        id=new_id(),
        job_id=scene["api_job"],
        tenant_id="t2",
        organization_id="org-9",
        scheduled_for=app_runtime.clock(),
        trigger="manual",
        triggered_by="someone@t2",
        status="succeeded",
        attempt=1,
        created_at=app_runtime.clock(),
        result={"secret": "t2-result"},
    )
    stray_audit = AuditEntry(
        id=new_id(),
        job_id=scene["api_job"],
        tenant_id="t2",
        organization_id="org-9",
        action="update",
        actor=SYSTEM.label,
        before={"name": "Secret before"},
        after={"name": "Secret after"},
        created_at=app_runtime.clock(),
    )
    async with app_runtime.sessions.begin() as session:
        session.add_all([stray_run, stray_audit])
    made["stray_run"] = stray_run.id
    return made


def _foreign_scene(scene: dict, foreign: dict, key: str, run_key: str) -> dict:
    return {
        **scene,
        "page_job": foreign[key],
        "api_job": foreign[key],
        "page_run": foreign[run_key],
        "api_run": foreign[run_key],
    }


async def _foreign_state(app_runtime, foreign) -> tuple:
    async with app_runtime.sessions() as session:
        jobs = [
            (j.version, j.is_enabled, j.deleted_at)
            for j in [await session.get(ScheduledJob, foreign[k]) for k in FOREIGN_JOBS]
        ]
        runs = (
            await session.execute(
                sa.select(ScheduledJobRun.id, ScheduledJobRun.status)
                .where(ScheduledJobRun.tenant_id.is_distinct_from("acme"))
                .order_by(ScheduledJobRun.id)
            )
        ).all()
    return jobs, runs


@pytest.mark.parametrize("persona", NOT_SUPERADMIN)
async def test_ids_of_other_scopes_are_not_found_on_every_route_that_takes_one(
    client, app_runtime, scene, foreign, persona
):
    headers = await caller(client, app_runtime, persona)
    before = await _foreign_state(app_runtime, foreign)
    wrong = {}
    for key, route in ROUTES.items():
        if not by_id(key):
            continue
        tries = {job: _foreign_scene(scene, foreign, job, f"{job}_run") for job in FOREIGN_JOBS}
        if "{run_id" in key:  # a run of another scope under a schedule the caller can see
            tries["stray run"] = {**scene, "page_run": foreign["stray_run"], "api_run": foreign["stray_run"]}
            tries["other schedule's run"] = {
                **scene,
                "page_run": foreign["foreign_live_run"],
                "api_run": foreign["foreign_live_run"],
            }
        for what, ids in tries.items():
            status = await call(client, ids, route, headers)
            if status != 404:
                wrong[f"{key} with {what}"] = status
    assert wrong == {}, wrong
    assert await _foreign_state(app_runtime, foreign) == before


@pytest.mark.parametrize("persona", NOT_SUPERADMIN)
async def test_runs_and_audit_entries_of_other_scopes_never_show(client, app_runtime, scene, foreign, persona):
    headers = await caller(client, app_runtime, persona)
    urls = [
        f"{API}/jobs/{scene['api_job']}/runs",
        f"{API}/jobs/{scene['api_job']}/audit",
        f"{LIST}/{scene['api_job']}",
        f"{API}/jobs",
        f"{API}/export",
        LIST,
        f"{LIST}?search=Secret",
        # Every run across schedules, also when another scope's tenant or schedule ids (live or
        # deleted) are asked for by name.
        f"{LIST}/runs",
        f"{LIST}/runs?q=Secret",
        f"{LIST}/runs?tenant=t2",
        f"{API}/runs",
        f"{API}/runs?search=Secret",
        f"{API}/runs?tenantId=t2",
        *(f"{API}/runs?jobId={foreign[k]}" for k in FOREIGN_JOBS),
        f"{API}/runs?jobId={scene['api_job']}",  # t2's stray run on acme's schedule stays t2's
        f"{LIST}/deleted",
        f"{LIST}/deleted?q=Secret",
        f"{API}/trash",
        f"{API}/trash?search=t2",
    ]
    for url in urls:
        text = (await client.get(url, headers=headers)).text
        for secret in ("t2-result", "t2-payload", "Secret before", "someone@t2", *(foreign[k] for k in FOREIGN_JOBS)):
            assert secret not in text, (url, secret)


@pytest.mark.parametrize("persona", NOT_SUPERADMIN)
@pytest.mark.parametrize("job", FOREIGN_JOBS)
async def test_creating_with_an_id_of_another_scope_is_refused_alike(client, app_runtime, scene, foreign, persona, job):
    headers = await caller(client, app_runtime, persona)
    before = await _foreign_state(app_runtime, foreign)
    new = {**NEW_JOB, "id": foreign[job]}
    item = job_definition(DAILY_SALES_REPORT, id=foreign[job])
    for key, extra in (
        (f"POST {API}/jobs", {"json": new}),
        (f"POST {API}/import", {"content": _import_document(item), "headers": {"Content-Type": "application/yaml"}}),
    ):
        route = Route(
            "POST",
            key.split(" ", 1)[1] + ("?dryRun=false" if "import" in key else ""),
            ROUTES[key].rule,
            lambda s, extra=extra: dict(extra),
        )
        status = await call(client, scene, route, headers)
        manages = persona in ("manager", "bearer token", "other organization", "other tenant")
        assert status == (422 if manages else 403), (key, status)
    assert await _foreign_state(app_runtime, foreign) == before


def _import_document(item: dict) -> bytes:
    import yaml

    from app.domain.fieldnames import camel

    body = {camel(k): v for k, v in item.items() if v is not None}
    return yaml.safe_dump({"version": 1, "schedules": [body]}).encode()


@pytest.mark.parametrize("persona", ("manager", "bearer token"))
async def test_the_refusal_says_only_that_the_id_is_not_available(client, app_runtime, scene, foreign, persona):
    headers = await caller(client, app_runtime, persona)
    if "Authorization" not in headers:
        headers = {"X-CSRF-Token": csrf_from((await client.get("/login", follow_redirects=True)).text)}
    answers = set()
    for job in FOREIGN_JOBS:
        response = await client.post(f"{API}/jobs", json={**NEW_JOB, "id": foreign[job]}, headers=headers)
        answers.add(response.json()["errors"]["id"].replace(foreign[job], "<id>"))
    assert answers == {"the id '<id>' is not available; choose another"}


@pytest.mark.parametrize("persona", NOT_SUPERADMIN)
async def test_targets_not_schedulable_in_the_callers_scope_are_never_offered_or_accepted(
    client, app_runtime, scene, persona
):
    headers = await caller(client, app_runtime, persona)
    for key, how in ACROSS_SCOPES.items():
        if how != "targets" or not key.startswith("GET"):
            continue
        url = key.split(" ", 1)[1] + (f"?target=command:{CLEANUP}" if key.endswith("/target") else "")
        text = (await client.get(url, headers=headers)).text
        assert CLEANUP not in text, key
    with_cleanup = {
        f"POST {API}/jobs": lambda s: {"json": {**NEW_JOB, "targetCommand": CLEANUP}},
        f"POST {LIST}/new": lambda s: {"data": {**job_form(s)["data"], "target": f"command:{CLEANUP}"}},
        f"POST {API}/import": lambda s: {
            "content": _import_document(
                {**job_definition(DAILY_SALES_REPORT, id="new-cleanup"), "target_command": CLEANUP}
            ),
            "headers": {"Content-Type": "application/yaml"},
        },
        f"PATCH {API}/jobs/{{job_id:str}}": lambda s: {"json": {"targetCommand": CLEANUP}},
        f"POST {LIST}/{{job_id:str}}/edit": lambda s: {
            "data": {**edit_form(s)["data"], "target": f"command:{CLEANUP}"}
        },
    }
    for key, body in with_cleanup.items():
        route = ROUTES[key]
        status = await call(client, scene, Route(route.method, route.path, route.rule, body), headers)
        expected = 422 if persona in ("manager", "bearer token") else route.rule(persona)
        if persona in OUTSIDERS and "{job_id" not in key:
            expected = 422  # refused as invalid input (also for the scope it names)
        assert status == expected, (key, status, expected)
    async with app_runtime.sessions() as session:
        assert not list(await session.scalars(sa.select(ScheduledJob.id).where(ScheduledJob.target_command == CLEANUP)))


@pytest.mark.parametrize("persona", ("manager", "bearer token", "other organization"))
async def test_bulk_actions_on_ids_of_other_scopes_change_nothing_of_theirs(
    client, app_runtime, scene, foreign, persona
):
    headers = await caller(client, app_runtime, persona)
    before = await _foreign_state(app_runtime, foreign)
    for action in ("disable", "enable", "run", "delete", "undo"):
        body = {"data": {"action": action, "ids": [foreign[k] for k in FOREIGN_JOBS], "confirmed": "yes"}}
        route = Route("POST", f"{LIST}/bulk", ROUTES[f"POST {LIST}/bulk"].rule, lambda s, body=body: body)
        assert await call(client, scene, route, headers) == 303
    assert await _foreign_state(app_runtime, foreign) == before


@pytest.mark.parametrize("persona", NOT_SUPERADMIN)
async def test_another_scopes_running_and_overdue_work_never_counts_in_processes_or_health(
    client, app_runtime, scene, foreign, persona
):
    """t2's run is running, its schedule and a queued run of it are long overdue: nobody but a
    superadmin is told, on any route that reports processes or health."""
    from datetime import timedelta

    long_ago = app_runtime.clock() - timedelta(hours=1)
    async with app_runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJobRun).where(ScheduledJobRun.id == foreign["foreign_live_run"]).values(status="running")
        )
        await session.execute(
            sa.update(ScheduledJobRun)
            .where(ScheduledJobRun.id == foreign["stray_run"])
            .values(status="queued", not_before=long_ago)
        )
        await session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id == foreign["foreign_live"]).values(next_run_at=long_ago)
        )
    headers = await caller(client, app_runtime, persona)
    assert [key for key, how in ACROSS_SCOPES.items() if how == "health"] == [
        f"GET {LIST}/processes",
        f"GET {API}/processes",
        f"GET {API}/health",
    ]
    processes = (await client.get(f"{API}/processes", headers=headers)).json()
    assert processes["runsInFlight"] == 0
    health = (await client.get(f"{API}/health", headers=headers)).json()
    assert [p["code"] for p in health["problems"]] == ["no-poller"]
    for url in (f"{LIST}/processes", LIST):
        text = (await client.get(url, headers=headers)).text
        assert "No scheduler is running" in text and "due for more than" not in text and "Queued runs" not in text
    client.cookies.clear()
    root = await caller(client, app_runtime, "superadmin")
    assert (await client.get(f"{API}/processes", headers=root)).json()["runsInFlight"] == 1
    codes = [p["code"] for p in (await client.get(f"{API}/health", headers=root)).json()["problems"]]
    assert codes == ["no-poller", "slots-overdue", "runs-overdue"]
