"""API fixtures: the web fixtures (app, client, personas) plus API tokens and schedules."""

from __future__ import annotations

import httpx
import pytest

from app.settings import load_settings
from app.web.app import create_app
from tests.web.conftest import *  # noqa: F403  (app_runtime, sign_in, csrf_from, ...)

API = "/api/scheduler"
PERSONAS = ("root@example.com", "owner@acme.test", "viewer@acme.test", "operator@acme.test", "owner@globex.test")


@pytest.fixture(scope="session")
def shared_app():
    """One app for the session: building it costs more than most API tests take. Its lifespan
    never runs here; each test hands it that test's runtime (see ``client``)."""
    return create_app(load_settings({"DATABASE_URL": "sqlite+aiosqlite:///:memory:"}), run_scheduler=False)


@pytest.fixture
async def client(app_runtime, shared_app):
    """The web ``client`` fixture, on the shared app."""
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


def acme_job(**overrides) -> dict:
    return {
        "id": "reports:daily:acme-eu",
        "name": "Daily sales report",
        "scope_type": "organization",
        "tenant_id": "acme",
        "organization_id": "acme-eu",
        "schedule_type": "cron",
        "schedule_value": "0 9 * * *",
        "timezone": "Europe/Warsaw",
        "target_type": "command",
        "target_command": "reports.sales-summary",
        "target_payload": {"period": "day"},
        **overrides,
    }


@pytest.fixture
async def job(app_runtime):
    """An organization schedule of acme/acme-eu, made by the system."""
    return await app_runtime.scheduler.create(acme_job())
