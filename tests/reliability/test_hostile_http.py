"""Hostile input over HTTP, to the admin pages and the JSON API: never a 500.

XSS payloads are stored as data and rendered escaped everywhere they show (list, detail, form,
run history, audit trail, flash messages, htmx fragments). SQL metacharacters in searches are
plain text. Oversized, deeply nested, non-UTF-8, wrongly typed or unknown input gets a 4xx with a
message that says what is wrong.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.support.http import API, LIST, csrf_from

XSS = [
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "javascript:alert(1)",
    "{{7*7}}{% raw %}",
    "</textarea><script>alert(1)</script>",
]
MARKUP = re.compile(r"<script>alert|<img src=x|<svg/onload|</textarea><script>")


@pytest.fixture
async def owner(client, bearer):
    return bearer("owner@acme.test")


def organization_job(**overrides) -> dict:
    return {
        "name": "Rates",
        "scopeType": "organization",
        "tenantId": "acme",
        "organizationId": "acme-eu",
        "scheduleValue": "0 * * * *",
        "targetType": "command",
        "targetCommand": "demo.echo",
        **overrides,
    }


def assert_no_live_markup(html: str, where: str) -> None:
    found = MARKUP.search(html)
    assert found is None, f"unescaped payload on {where}: ...{html[max(0, found.start() - 80) : found.end() + 40]}..."


# ----- XSS -----------------------------------------------------------------------------------------


async def test_xss_payloads_are_stored_as_given_and_rendered_escaped_everywhere(client, owner, app_runtime, sign_in):
    payload = " ".join(XSS)
    created = await client.post(
        f"{API}/jobs",
        headers=owner,
        json=organization_job(name=XSS[0], description=payload, targetPayload={"message": payload, "fail": payload}),
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert created.json()["name"] == XSS[0]  # data, not sanitized away
    await client.patch(f"{API}/jobs/{job_id}", headers=owner, json={"description": payload + " (edited)"})
    await client.post(f"{API}/jobs/{job_id}/disable", headers=owner, json={"note": payload[:500]})
    # A run that failed with the payload in its error message and stack.
    from app.strategies.local import LocalScheduler
    from tests.support.firing import fire

    await app_runtime.scheduler.trigger(job_id)
    await fire(LocalScheduler(app_runtime))

    await sign_in("owner@acme.test")
    pages = {
        "list": f"{LIST}?search=%3Cscript%3E",
        "detail": f"{LIST}/{job_id}",
        "edit": f"{LIST}/{job_id}/edit",
        "confirm delete": f"{LIST}/{job_id}/delete",
    }
    for where, url in pages.items():
        page = await client.get(url)
        assert page.status_code == 200, (where, page.status_code)
        assert_no_live_markup(page.text, where)
        assert "&lt;script&gt;" in page.text or "&#34;&gt;&lt;img" in page.text, where
    [run] = (await client.get(f"{API}/jobs/{job_id}/runs", headers=owner)).json()["items"]
    fragment = await client.get(f"{LIST}/{job_id}/runs/{run['id']}", headers={"HX-Request": "true"})
    assert fragment.status_code == 286  # finished: htmx stops polling it
    assert_no_live_markup(fragment.text, "run fragment")
    history = await client.get(
        f"{LIST}/{job_id}?status=failed", headers={"HX-Request": "true", "HX-Target": "run-history"}
    )
    assert_no_live_markup(history.text, "history fragment")

    # The flash message after an action names the schedule: escaped too.
    token = csrf_from((await client.get(f"{LIST}/{job_id}")).text)
    response = await client.post(f"{LIST}/{job_id}/enable", data={"_csrf": token}, follow_redirects=True)
    assert response.status_code == 200  # followed the redirect
    assert_no_live_markup(response.text, "flash")
    assert "&lt;script&gt;" in response.text

    # A preview of a hostile schedule value and zone, as typed into the form.
    preview = await client.get(f"{LIST}/preview", params={"schedule_value": XSS[1], "timezone": XSS[0]})
    assert preview.status_code == 200
    assert_no_live_markup(preview.text, "preview")


async def test_a_rejected_form_shows_what_was_typed_escaped(client, sign_in):
    await sign_in("owner@acme.test")
    token = csrf_from((await client.get(f"{LIST}/new")).text)
    form = {
        "_csrf": token,
        "name": XSS[5],
        "description": XSS[1],
        "schedule_type": "cron",
        "schedule_value": XSS[2],
        "timezone": XSS[0],
        "target": f"command:{XSS[0]}",
        "target_payload": XSS[5],
        "scope_type": "organization",
    }
    page = await client.post(f"{LIST}/new", data=form)
    assert page.status_code == 422
    assert_no_live_markup(page.text, "rejected form")
    assert "&lt;/textarea&gt;&lt;script&gt;" in page.text


async def test_the_api_answers_json_never_html_a_browser_would_run(client, owner):
    created = await client.post(f"{API}/jobs", headers=owner, json=organization_job(name=XSS[0]))
    response = await client.get(f"{API}/jobs/{created.json()['id']}", headers=owner)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-content-type-options"] == "nosniff"
    error = await client.get(f"{API}/jobs/{XSS[0]}", headers=owner)
    assert error.status_code == 404 and error.headers["content-type"] == "application/problem+json"


# ----- SQL metacharacters ----------------------------------------------------------------------------


SEARCHES = [
    "' OR '1'='1",
    "'; DROP TABLE scheduled_jobs; --",
    "%",
    "_",
    "\\",
    "%%' --",
    "a_b",
    "100%",
    '" OR ""="',
    "') OR 1=1; --",
    "$1",
    "::text",
    "\\x00",
]


async def test_sql_metacharacters_in_a_search_are_plain_text(client, bearer, app_runtime):
    for name in ("a_b", "axb", "100% done", "plain"):
        await app_runtime.scheduler.create({**_domain_job(), "name": name})
    await app_runtime.scheduler.create(
        {**_domain_job(), "name": "globex secret", "tenant_id": "globex", "organization_id": "globex-us"}
    )
    for search in SEARCHES:
        response = await client.get(f"{API}/jobs", params={"search": search}, headers=bearer("owner@acme.test"))
        assert response.status_code == 200, (search, response.text)
        names = {item["name"] for item in response.json()["items"]}
        assert names == {n for n in ("a_b", "axb", "100% done", "plain") if search.strip().lower() in n.lower()}, search
    await client.get("/login")
    await _sign_in(client, "owner@acme.test")
    for search in SEARCHES:
        page = await client.get(LIST, params={"search": search})
        assert page.status_code == 200, (search, page.status_code)
        assert "globex secret" not in page.text


async def _sign_in(client, email):
    from tests.support.http import login

    assert (await login(client, email)).status_code in (302, 303)


def _domain_job() -> dict:
    return {
        "name": "x",
        "scope_type": "organization",
        "tenant_id": "acme",
        "organization_id": "acme-eu",
        "schedule_type": "cron",
        "schedule_value": "0 * * * *",
        "target_type": "command",
        "target_command": "demo.echo",
    }


# ----- size, depth, encoding, shape ------------------------------------------------------------------


async def test_a_payload_over_the_limit_is_a_422_naming_the_limit(client, owner):
    response = await client.post(
        f"{API}/jobs", headers=owner, json=organization_job(targetPayload={"blob": "x" * 70_000})
    )
    assert response.status_code == 422
    assert "limit is 65,536" in response.json()["errors"]["targetPayload"]


@pytest.mark.parametrize("path, kind", [(f"{API}/jobs", "json"), (f"{API}/import", "yaml"), (f"{LIST}/new", "form")])
async def test_a_body_over_the_request_limit_is_a_413(client, owner, sign_in, path, kind):
    size = 5 * 1024 * 1024 if kind == "yaml" else 2 * 1024 * 1024
    if kind == "form":
        await sign_in("owner@acme.test")
        token = csrf_from((await client.get(f"{LIST}/new")).text)
        response = await client.post(
            path,
            content=f"_csrf={token}&name=" + "x" * size,
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": token},
        )
    else:
        content_type = "application/json" if kind == "json" else "application/yaml"
        response = await client.post(
            path, content=b"{" + b" " * size + b"}", headers={**owner, "Content-Type": content_type}
        )
    assert response.status_code == 413, (response.status_code, response.text[:300])
    assert "too large" in response.text.lower() or "exceeds" in response.text.lower()


@pytest.mark.parametrize("depth", [25, 1000, 100_000])
async def test_deeply_nested_json_is_refused_without_a_crash(client, owner, depth):
    nested = "[" * depth + "]" * depth
    body = json.dumps(organization_job())[:-1] + f', "targetPayload": {{"a": {nested}}}}}'
    response = await client.post(f"{API}/jobs", headers={**owner, "Content-Type": "application/json"}, content=body)
    assert response.status_code in (400, 422), (response.status_code, response.text[:300])
    assert response.json()["detail"]


BODIES = [
    b'{"name": "\xff\xfe broken"}',
    b"\xef\xbb\xbf{}",
    b'{"name": "\\ud800"}',
    b"\x00\x00\x00{",
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b'{"name": NaN}',
    b'{"name": "a", "name": "b"}',
]


async def test_bodies_that_are_not_a_json_object_of_utf8_text_are_a_4xx(client, owner):
    for body in BODIES:
        response = await client.post(f"{API}/jobs", headers={**owner, "Content-Type": "application/json"}, content=body)
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text[:300])
        assert response.json()["detail"], body


WRONG = [
    ({"bogus": 1}, {"bogus"}),
    ({"name": 123}, {"name"}),
    ({"maxRetries": "many"}, {"maxRetries"}),
    ({"targetPayload": []}, {"targetPayload"}),
    ({"isEnabled": "yes please"}, {"isEnabled"}),
    ({"startAt": "next tuesday"}, {"startAt"}),
    ({"scheduleValue": ["* * * * *"]}, {"scheduleValue"}),
    ({"timezone": None, "scheduleType": "hourly"}, {"scheduleType"}),
]


async def test_unknown_fields_and_wrong_types_are_a_422_naming_the_field(client, owner):
    for fields, expected in WRONG:
        response = await client.post(f"{API}/jobs", headers=owner, json={**organization_job(), **fields})
        assert response.status_code == 422, (fields, response.status_code, response.text[:300])
        assert expected <= set(response.json()["errors"]), response.json()


QUERIES = [
    "pageSize=abc",
    "page=-1",
    "pageSize=100000",
    "sort=name;drop",
    "isEnabled=maybe",
    "scopeType=<script>",
    "search=" + "x" * 500,
    "search=%00",
    "search=%FF%FE",
    "lastStatus=%F0%9F%92%A9",
    "page=99999999999999999999",
]


async def test_malformed_query_parameters_are_a_4xx_or_ignored(client, owner, sign_in):
    for query in QUERIES:
        response = await client.get(f"{API}/jobs?{query}", headers=owner)
        assert response.status_code in (200, 400, 422), (query, response.status_code, response.text[:300])
    await sign_in("owner@acme.test")
    for query in QUERIES:
        page = await client.get(f"{LIST}?{query}")
        assert page.status_code in (200, 400, 422), (query, page.status_code)


async def test_a_form_post_with_invalid_utf8_is_refused_without_a_crash(client, sign_in):
    await sign_in("owner@acme.test")
    token = csrf_from((await client.get(f"{LIST}/new")).text)
    for body in (b"name=%FF%FE&_csrf=" + token.encode(), b"name=\xff\xfe&_csrf=" + token.encode()):
        response = await client.post(
            f"{LIST}/new",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": token},
        )
        assert response.status_code in (400, 422), (body, response.status_code)


# ----- raw bytes no HTTP client library will send --------------------------------------------------


async def asgi(app, method: str, raw_path: bytes, query: bytes = b"", headers=(), body: bytes = b"") -> int:
    """One request straight into the ASGI app, with bytes as they came off the wire."""
    sent: list[dict] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path.decode("utf-8", "replace"),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver.local"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver.local", 80),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


RAW = [
    (f"{API}/jobs".encode(), b"search=\xff\xfe"),
    (f"{API}/jobs".encode(), b"pageSize=\xc0\xaf"),
    (f"{API}/jobs/\xff\xfe".encode("latin-1"), b""),
    (LIST.encode(), b"search=\xff&status=\x00"),
    (f"{LIST}/\xff".encode("latin-1"), b""),
    (b"/login", b"next=\xff\xfe"),
]


async def test_invalid_utf8_in_paths_and_query_strings_is_never_a_500(client, shared_app, tokens):
    auth = [(b"authorization", f"Bearer {tokens['owner@acme.test']}".encode())]
    for path, query in RAW:
        assert await asgi(shared_app, "GET", path, query, headers=auth) < 500, (path, query)
        assert await asgi(shared_app, "GET", path, query) < 500, (path, query)
    # Not UTF-8 at all: refused at the door, with the reason.
    assert await asgi(shared_app, "GET", f"{API}/jobs".encode(), b"search=\xff", headers=auth) == 400


async def test_odd_authorization_headers_are_a_401(client, shared_app):
    for header in (b"Bearer \xff\xfe", b"Bearer " + b"x" * 10_000, b"bearer", b"\xff", b"Bearer a b c", b"Basic Og=="):
        assert await asgi(shared_app, "GET", f"{API}/jobs".encode(), headers=[(b"authorization", header)]) == 401, (
            header
        )


async def test_odd_cookies_are_ignored(client, shared_app):
    for cookie in (
        b"mercato_session=\xff\xfe",
        b"mercato_session=" + b"a" * 8000,
        b"mercato_flash=%FF.%00; mercato_csrf=\xff",
        b"mercato_session",
        b";;;=;",
    ):
        assert await asgi(shared_app, "GET", LIST.encode(), headers=[(b"cookie", cookie)]) in (302, 303), cookie
        assert await asgi(shared_app, "GET", b"/login", headers=[(b"cookie", cookie)]) == 200, cookie
