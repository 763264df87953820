"""What travels over the wire: static files under hashed names, cached for a year; pages and
static files gzipped; an icon for every page; a CSRF token that a compressed page cannot leak."""

from __future__ import annotations

import re

from tests.support.factories import make_job
from tests.support.http import LIST, as_user, csrf_from


async def test_pages_link_static_files_by_content_hash_and_browsers_keep_them(client, app_runtime):
    await as_user(client, app_runtime, "owner@acme.test")
    page = (await client.get(LIST)).text
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    assert {re.sub(r"\.[0-9a-f]{10}\.", ".", link) for link in links} == {
        "/static/favicon.svg",
        "/static/app.css",
        "/static/htmx-2.0.11.min.js",
        "/static/app.js",
    }
    for link in links:
        response = await client.get(link)
        assert response.status_code == 200 and response.content
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        again = await client.get(link, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304 and not again.content
    css = next(link for link in links if link.endswith(".css"))
    assert (await client.get(css)).headers["content-type"].startswith("text/css")


async def test_plain_static_names_are_revalidated_and_unknown_ones_are_404(client):
    plain = await client.get("/static/app.css")
    assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"
    for missing in ("/static/nope.css", "/static/app.0000000000.css", "/static/..%2fpyproject.toml"):
        assert (await client.get(missing)).status_code == 404, missing


async def test_the_favicon_answers(client):
    response = await client.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")


async def test_pages_and_static_files_are_gzipped_for_browsers_that_ask(client, app_runtime):
    for n in range(40):
        await make_job(app_runtime, name=f"Report {n:02}")
    await as_user(client, app_runtime, "owner@acme.test")
    raw = await client.get(f"{LIST}?size=100", headers={"Accept-Encoding": "identity"})
    packed = await client.get(f"{LIST}?size=100", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in raw.headers and packed.headers["content-encoding"] == "gzip"
    assert packed.text.count("Report ") == raw.text.count("Report ") > 40  # httpx unpacks it
    assert int(packed.headers["content-length"]) < len(raw.content) / 4
    script = await client.get("/static/htmx-2.0.11.min.js", headers={"Accept-Encoding": "gzip"})
    assert script.headers["content-encoding"] == "gzip"


async def test_the_csrf_token_differs_on_every_page_and_each_one_works(client, app_runtime):
    job = await make_job(app_runtime)
    await as_user(client, app_runtime, "owner@acme.test")
    tokens = [csrf_from((await client.get(LIST)).text) for _ in range(3)]
    assert len(set(tokens)) == 3
    for token, action in zip(tokens, ("disable", "enable", "disable"), strict=True):
        answer = await client.post(f"{LIST}/{job.id}/{action}", data={"_csrf": token}, follow_redirects=False)
        assert answer.status_code == 303, action
    for forged in ("", "x", tokens[0][:-4], "A" * len(tokens[0])):
        answer = await client.post(f"{LIST}/{job.id}/enable", data={"_csrf": forged}, follow_redirects=False)
        assert answer.status_code == 403, forged
