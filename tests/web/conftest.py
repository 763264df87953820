"""Web fixtures: the real app on a real database, a test client, and personas."""

from __future__ import annotations

import re

import pytest
import httpx

from app.domain.passwords import hash_password
from app.web.app import create_app

PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)  # hashed once: Argon2 is slow on purpose


@pytest.fixture
async def app_runtime(runtime):
    """The runtime with users for every persona (see ``personas``)."""
    users = runtime.users
    await users.create("root@example.com", PASSWORD, "admin", is_superadmin=True, password_hash=PASSWORD_HASH)
    await users.create("owner@acme.test", PASSWORD, "admin", tenant_id="acme", organization_id="acme-eu", password_hash=PASSWORD_HASH)
    await users.create("viewer@acme.test", PASSWORD, "employee", tenant_id="acme", organization_id="acme-eu", password_hash=PASSWORD_HASH)
    await users.create("operator@acme.test", PASSWORD, "operator", tenant_id="acme", organization_id="acme-eu", password_hash=PASSWORD_HASH)
    await users.create("owner@globex.test", PASSWORD, "admin", tenant_id="globex", organization_id="globex-us", password_hash=PASSWORD_HASH)
    return runtime


@pytest.fixture
async def client(app_runtime):
    # In the test's own event loop (Litestar's test client runs the app in a thread with another
    # loop, which the shared database pool cannot follow); the runtime is handed in directly.
    app = create_app(app_runtime.settings, run_scheduler=False, runtime=app_runtime)
    app.state.runtime = app_runtime
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as test_client:
        yield test_client


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def login(client, email: str, password: str = PASSWORD):
    page = await client.get("/login")
    return await client.post(
        "/login", data={"email": email, "password": password, "_csrf": csrf_from(page.text)}, follow_redirects=False
    )


@pytest.fixture
def sign_in(client):
    async def _sign_in(email: str):
        response = await login(client, email)
        assert response.status_code in (302, 303), response.text
        return client

    return _sign_in
