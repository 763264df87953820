"""Database fixtures: real PostgreSQL and SQLite databases built by the migrations, a clock, a runtime."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.persistence.migrate import upgrade
from app.runtime import Runtime
from app.settings import load_settings
from tests.support.clock import FakeClock, utc
from tests.support.databases import TABLES, DatabaseExists, fresh_database

#: The tenants and organizations of the tests' world: schedules may name only these.
SCOPES = {
    "acme": ("acme-eu", "acme-us"),
    "globex": ("globex-us",),
    "t1": ("org-1", "org-2"),
    "t2": ("org-9",),
    "tenant-007": ("tenant-007-org-1",),
}


@pytest.fixture(scope="session")
def pg_database():
    """A PostgreSQL database of this run's own, made by the migrations, dropped at the end.

    TEST_PG_DATABASE may name it; a database of that name must not exist yet (someone else's).
    """
    try:
        database = asyncio.run(fresh_database("mercato_test", name=os.environ.get("TEST_PG_DATABASE") or None))
    except DatabaseExists as exc:
        raise pytest.UsageError(f"{exc} (unset TEST_PG_DATABASE, or name one that does not exist)") from None
    try:
        yield database.url
    finally:
        asyncio.run(database.drop())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    path = tmp_path / "mercato.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def pg_url(pg_database) -> str:
    """The PostgreSQL test database, emptied (all but the seeded roles) before the test."""
    engine = Runtime.create(load_settings({"DATABASE_URL": pg_database})).engine
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)}"))
    await engine.dispose()
    return pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    """Run the test on both backends: SQLite (the embedded default) and PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc(2026, 6, 1, 12, 0, 0))


async def seed_scopes(runtime: Runtime) -> None:
    for tenant, organizations in SCOPES.items():
        await runtime.users.ensure_scope(tenant)
        for organization in organizations:
            await runtime.users.ensure_scope(tenant, organization)


@pytest.fixture
async def runtime(db_url, clock):
    settings = replace(load_settings({"DATABASE_URL": db_url}), scheduler_poll_interval_ms=200)
    rt = Runtime.create(settings, clock=clock)
    await seed_scopes(rt)
    yield rt
    await rt.close()
