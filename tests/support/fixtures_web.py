"""Web fixtures: the real app on the test's runtime, an HTTP client, the personas signed in."""

from __future__ import annotations

import httpx
import pytest

from app.web.app import create_app
from tests.support.http import login
from tests.support.personas import seed_personas


@pytest.fixture
async def app_runtime(runtime):
    """The runtime with a user for every persona (see ``tests.support.personas``)."""
    await seed_personas(runtime)
    return runtime


@pytest.fixture
async def client(app_runtime):
    """A client of an app of the test's own (built from the runtime's settings)."""
    # In the test's own event loop (Litestar's test client runs the app in a thread with another
    # loop, which the shared database pool cannot follow); the runtime is handed in directly.
    app = create_app(app_runtime.settings, run_scheduler=False, runtime=app_runtime)
    app.state.runtime = app_runtime
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
def sign_in(client):
    async def _sign_in(email: str):
        response = await login(client, email)
        assert response.status_code in (302, 303), response.text
        return client

    return _sign_in
