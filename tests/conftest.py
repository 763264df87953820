"""Shared fixtures: real PostgreSQL and SQLite databases built by the migrations, a clock."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa

from app.persistence.migrate import upgrade
from app.runtime import Runtime
from app.settings import load_settings

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
#: Each run of the suite makes its own database (several people, a test run and a benchmark
#: may share one PostgreSQL): a name of this run's own unless TEST_PG_DATABASE names one, and
#: the run drops only a database it made itself.
PG_TEST_DB = os.environ.get("TEST_PG_DATABASE") or f"mercato_test_{os.getpid()}_{secrets.token_hex(3)}"
PG_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_TEST_DB}"
TABLES = ("login_attempts", "web_sessions", "scheduler_audit_log", "scheduled_job_runs", "scheduled_jobs", "api_tokens", "users", "organizations", "tenants")


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, now: datetime) -> datetime:
        self.now = now
        return now


async def _create_pg_database() -> None:
    """Create this run's database; refuses to touch one that exists (someone else's)."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{PG_TEST_DB}"')
    except asyncpg.DuplicateDatabaseError:
        raise pytest.UsageError(
            f"database {PG_TEST_DB!r} exists already; the suite only uses a database it makes itself "
            "(unset TEST_PG_DATABASE, or name one that does not exist)"
        ) from None
    finally:
        await conn.close()


async def _drop_pg_database() -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_TEST_DB}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database():
    """A PostgreSQL database of this run's own, made by the migrations, dropped at the end."""
    asyncio.run(_create_pg_database())
    try:
        upgrade(PG_URL)
        yield PG_URL
    finally:
        asyncio.run(_drop_pg_database())


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
    return FakeClock(datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc))


#: The tenants and organizations of the tests' world: schedules may name only these.
SCOPES = {"acme": ("acme-eu", "acme-us"), "globex": ("globex-us",), "t1": ("org-1", "org-2"), "t2": ("org-9",),
          "tenant-007": ("tenant-007-org-1",)}


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
