"""Liveness and readiness probes."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from app.runtime import Runtime
from app.settings import load_settings
from app.web.app import create_app

UNREACHABLE_PG = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url


async def client_for(runtime) -> httpx.AsyncClient:
    app = create_app(runtime.settings, run_scheduler=False, runtime=runtime)
    app.state.runtime = runtime
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local")


@pytest.fixture
async def broken_database():
    runtime = Runtime.create(load_settings({"DATABASE_URL": UNREACHABLE_PG}))
    async with await client_for(runtime) as client:
        yield client
    await runtime.close()


async def test_healthz_answers_without_credentials(client):
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_reports_the_database(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["strategy"] == "local"
    assert body["checks"]["database"]["ok"] is True and body["checks"]["database"]["latencyMs"] >= 0
    assert "redis" not in body["checks"]


async def test_without_a_database_the_process_is_alive_but_not_ready(broken_database):
    assert (await broken_database.get("/healthz")).status_code == 200
    response = await broken_database.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready" and body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"]  # the kind of failure, not connection details


async def test_async_strategy_needs_redis_too(app_runtime, client):
    app_runtime.settings = replace(app_runtime.settings, queue_strategy="async", redis_url="redis://127.0.0.1:6379/0")
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["redis"]["ok"] is True

    app_runtime.settings = replace(app_runtime.settings, redis_url="redis://127.0.0.1:1/0")
    down = await client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["redis"]["ok"] is False and down.json()["checks"]["database"]["ok"] is True
