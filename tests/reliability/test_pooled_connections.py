"""Pooled connections and a database that restarts: found before use, or a clear 503.

A connection that sat idle in the pool is pinged before it is used again, so a restart while
nothing ran costs nobody an error. While the database really is unreachable, pages and the API
answer 503 with ``Retry-After`` (not "something went wrong").
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.persistence.database import PING_AFTER_IDLE_SECONDS
from app.runtime import Runtime
from app.settings import load_settings
from tests.support.chaos import sever_connections
from tests.support.http import API


@pytest.mark.slow
async def test_a_connection_cut_while_idle_in_the_pool_is_replaced_before_it_is_used(runtime):
    async with runtime.sessions() as session:
        assert await session.scalar(sa.text("SELECT 1")) == 1
    assert await sever_connections(runtime.settings.database_url) >= 1  # as a restart would
    await asyncio.sleep(PING_AFTER_IDLE_SECONDS + 0.2)
    async with runtime.sessions() as session:
        assert await session.scalar(sa.text("SELECT 2")) == 2
    assert (await runtime.scheduler.list()).items is not None


@pytest.mark.slow
async def test_while_the_database_is_unreachable_pages_and_the_api_answer_503(client, bearer, app_runtime, sign_in):
    owner = bearer("owner@acme.test")
    await sign_in("owner@acme.test")
    assert (await client.get(f"{API}/jobs", headers=owner)).status_code == 200

    def refuse(*_args, **_kwargs):
        raise ConnectionRefusedError("connection refused (the database is restarting)")

    event.listen(app_runtime.engine.sync_engine, "do_connect", refuse)
    try:
        await sever_connections(app_runtime.settings.database_url)
        await asyncio.sleep(PING_AFTER_IDLE_SECONDS + 0.2)
        api = await client.get(f"{API}/jobs", headers=owner)
        assert api.status_code == 503, api.text
        assert api.headers["retry-after"] == "1"
        assert api.headers["content-type"].startswith("application/problem+json")
        assert "database is unavailable" in api.json()["detail"]
        page = await client.get("/backend/config/scheduled-jobs")
        assert page.status_code == 503
        assert "database is unavailable" in page.text
    finally:
        event.remove(app_runtime.engine.sync_engine, "do_connect", refuse)
    assert (await client.get(f"{API}/jobs", headers=owner)).status_code == 200


async def test_statements_are_planned_for_the_table_as_it_is_now_not_as_it_was_when_prepared(pg_url):
    # A generic plan cached while the run table was empty read every queued run once per run
    # taken when a burst arrived; each execution is planned for its parameters instead.
    runtime = Runtime.create(load_settings({"DATABASE_URL": pg_url}))
    try:
        async with runtime.sessions() as session:
            assert await session.scalar(sa.text("SHOW plan_cache_mode")) == "force_custom_plan"
    finally:
        await runtime.close()
