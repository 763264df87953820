"""API fixtures: one app for the session, API tokens of the personas, a schedule of acme-eu."""

from __future__ import annotations

import httpx
import pytest

from app.settings import load_settings
from app.web.app import create_app
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.personas import PERSONAS


@pytest.fixture(scope="session")
def shared_app():
    """One app for the session: building it costs more than most API tests take. Its lifespan
    never runs here; each test hands it that test's runtime (see ``shared_app_client``)."""
    return create_app(load_settings({"DATABASE_URL": "sqlite+aiosqlite:///:memory:"}), run_scheduler=False)


@pytest.fixture
async def shared_app_client(app_runtime, shared_app):
    """A client of the shared app, on the test's runtime (folders use it as their ``client``)."""
    shared_app.state.runtime = app_runtime
    transport = httpx.ASGITransport(app=shared_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
async def tokens(app_runtime) -> dict[str, str]:
    """An API token per persona, by email."""
    secrets = {}
    for email in PERSONAS:
        user = await app_runtime.credentials.user_by_email(email)
        secrets[email] = (await app_runtime.credentials.issue_token(user.id, "tests")).secret
    return secrets


@pytest.fixture
def bearer(tokens):
    """``bearer("owner@acme.test")`` -> the Authorization header of that persona."""
    return lambda email: {"Authorization": f"Bearer {tokens[email]}"}


@pytest.fixture
async def job(app_runtime):
    """An organization schedule of acme/acme-eu, made by the system."""
    return await app_runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
