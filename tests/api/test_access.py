"""Who may call which route: every route as owner, view-only, operator, other tenant, anonymous,
a revoked token (all with bearer tokens), and the browser session with its CSRF token."""

from __future__ import annotations

import pytest

from app.domain.transfer import dump_schedules
from tests.support.http import API, csrf_from

NEW_JOB = {
    "name": "Hourly rates",
    "scheduleValue": "0 * * * *",
    "scopeType": "organization",
    "tenantId": "acme",
    "organizationId": "acme-eu",
    "targetType": "queue",
    "targetQueue": "currency-rates",
}

# In an order where no call spoils a later one (delete comes last).
ROUTES = [
    ("list", "GET", "/jobs"),
    ("get", "GET", "/jobs/{job}"),
    ("runs", "GET", "/jobs/{job}/runs"),
    ("run", "GET", "/runs/{run}"),
    ("audit", "GET", "/jobs/{job}/audit"),
    ("targets", "GET", "/targets"),
    ("preview", "GET", "/preview?scheduleValue=*/15%20*%20*%20*%20*"),
    ("export", "GET", "/export"),
    ("import", "POST", "/import?dryRun=true"),
    ("create", "POST", "/jobs"),
    ("patch", "PATCH", "/jobs/{job}"),
    ("disable", "POST", "/jobs/{job}/disable"),
    ("enable", "POST", "/jobs/{job}/enable"),
    ("trigger", "POST", "/jobs/{job}/trigger"),
    ("undo", "POST", "/jobs/{job}/undo"),
    ("delete", "DELETE", "/jobs/{job}"),
]
READS = {"list": 200, "get": 200, "runs": 200, "run": 200, "audit": 200, "targets": 200, "preview": 200, "export": 200}
WRITES_FORBIDDEN = {
    name: 403 for name in ("import", "create", "patch", "disable", "enable", "trigger", "undo", "delete")
}
EXPECTED = {
    "owner@acme.test": {
        **READS,
        "import": 200,
        "create": 201,
        "patch": 200,
        "disable": 200,
        "enable": 200,
        "trigger": 202,
        "undo": 200,
        "delete": 204,
    },
    "viewer@acme.test": {**READS, **WRITES_FORBIDDEN},
    "operator@acme.test": {**READS, **WRITES_FORBIDDEN, "trigger": 202},
    # Another tenant's schedule does not exist for them (404), and they cannot write into acme (422).
    "owner@globex.test": {
        "list": 200,
        "targets": 200,
        "preview": 200,
        "export": 200,
        "import": 422,
        "create": 422,
        **{
            name: 404
            for name in ("get", "runs", "run", "audit", "patch", "disable", "enable", "trigger", "undo", "delete")
        },
    },
}


@pytest.fixture
async def scene(app_runtime, job):
    """The acme schedule with one edit (so there is something to undo) and one run."""
    await app_runtime.scheduler.update(job.id, {"description": "edited once"})
    run = await app_runtime.scheduler.trigger(job.id)
    return {"job": job.id, "run": run.id, "import": dump_schedules([await app_runtime.scheduler.get(job.id)])}


async def call(client, scene, method, path, headers):
    url = API + path.format(**scene)
    body = {}
    if path.startswith("/import"):
        body = {"content": scene["import"].encode(), "headers": {**headers, "Content-Type": "application/yaml"}}
    elif path == "/jobs" and method == "POST":
        body = {"json": NEW_JOB}
    elif path.endswith("/disable"):
        body = {"json": {"note": "maintenance"}}
    elif method == "PATCH":
        body = {"json": {"name": "Renamed"}}
    return await client.request(method, url, **({"headers": headers} | body))


async def statuses(client, scene, headers) -> dict[str, int]:
    return {name: (await call(client, scene, method, path, headers)).status_code for name, method, path in ROUTES}


@pytest.mark.parametrize("email", list(EXPECTED))
async def test_it_gives_each_persona_exactly_their_rights_with_a_bearer_token(client, bearer, scene, email):
    assert await statuses(client, scene, bearer(email)) == EXPECTED[email]


async def test_other_tenants_schedules_are_invisible_in_lists_and_exports(client, bearer, scene):
    listed = await client.get(f"{API}/jobs", headers=bearer("owner@globex.test"))
    assert listed.json()["items"] == [] and listed.json()["total"] == 0
    exported = await client.get(f"{API}/export", headers=bearer("owner@globex.test"))
    assert scene["job"] not in exported.text
    mine = await client.get(f"{API}/jobs", headers=bearer("viewer@acme.test"))
    assert [item["id"] for item in mine.json()["items"]] == [scene["job"]]


async def test_it_refuses_anonymous_callers_with_401_on_every_route(client, scene):
    got = await statuses(client, scene, {})
    assert got == {name: 401 for name, _, _ in ROUTES}
    response = await client.post(f"{API}/jobs", json={})
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


async def test_it_refuses_a_revoked_token_on_every_route(client, app_runtime, tokens, scene):
    owner = await app_runtime.credentials.user_by_email("owner@acme.test")
    (token,) = await app_runtime.credentials.tokens_of(owner.id)
    await app_runtime.credentials.revoke_token(token.id)
    got = await statuses(client, scene, {"Authorization": f"Bearer {tokens['owner@acme.test']}"})
    assert got == {name: 401 for name, _, _ in ROUTES}


@pytest.mark.parametrize("header", ["Bearer msk_not-a-real-token-at-all-xxxxxxxx", "Basic b3duZXI6cGFzcw==", "Bearer"])
async def test_it_refuses_malformed_or_unknown_credentials(client, scene, header):
    response = await client.get(f"{API}/jobs", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["status"] == 401


async def test_the_browser_session_works_with_its_csrf_token(client, sign_in, scene):
    await sign_in("owner@acme.test")
    assert (await client.get(f"{API}/jobs/{scene['job']}")).status_code == 200
    forged = await client.patch(f"{API}/jobs/{scene['job']}", json={"name": "Forged"})
    assert forged.status_code == 403
    token = csrf_from((await client.get("/backend/config/scheduled-jobs/new")).text)
    changed = await client.patch(f"{API}/jobs/{scene['job']}", json={"name": "Mine"}, headers={"X-CSRF-Token": token})
    assert changed.status_code == 200 and changed.json()["name"] == "Mine"
