"""PostgreSQL databases of a run's own: made, migrated to head, and dropped only by their maker.

Several people, test runs and benchmarks share one PostgreSQL server. So a database gets a name
of this run's own (a prefix, the process id and a random suffix) unless one is named, a name
that exists already belongs to someone else and is refused, and ``Database.drop`` drops only a
database this process made. ``reuse=True`` is for data worth keeping between runs (a benchmark's
ten-minute load): the named database is used as it is when it exists, and never dropped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass

import asyncpg

from app.persistence.migrate import upgrade

ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
#: Every table, in one TRUNCATE: what emptying a test database means.
TABLES = (
    "scheduler_processes",
    "login_attempts",
    "web_sessions",
    "scheduler_audit_log",
    "scheduled_job_run_logs",
    "scheduled_job_runs",
    "scheduled_jobs",
    "api_tokens",
    "users",
    "organizations",
    "tenants",
)


class DatabaseExists(RuntimeError):
    """A database of the name asked for exists already: someone else's, never touched."""


@dataclass(frozen=True)
class Database:
    name: str
    #: The SQLAlchemy URL (asyncpg driver).
    url: str
    admin_dsn: str
    #: Made by this process: the only kind ``drop`` drops.
    made: bool

    async def drop(self) -> None:
        if not self.made:
            return
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


def run_name(prefix: str) -> str:
    """A database name of this run's own."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


def database_url(name: str, admin_dsn: str = ADMIN_DSN) -> str:
    """The SQLAlchemy URL of database ``name`` on the server of ``admin_dsn``."""
    server = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{server}/{name}"


async def fresh_database(
    prefix: str = "mercato_test", *, name: str | None = None, reuse: bool = False, admin_dsn: str = ADMIN_DSN
) -> Database:
    """A database migrated to head: ``name``, or ``prefix`` plus a suffix of this run's own.

    When the database exists already it is refused (``DatabaseExists``), unless ``reuse``: then
    it is brought up to head and handed back with ``made`` False, so nothing here drops it.
    """
    name = name or run_name(prefix)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        made = True
    except asyncpg.DuplicateDatabaseError:
        if not reuse:
            raise DatabaseExists(
                f"database {name!r} exists already; only a database made by this run is used"
            ) from None
        made = False
    finally:
        await conn.close()
    database = Database(name, database_url(name, admin_dsn), admin_dsn, made)
    try:
        await asyncio.to_thread(upgrade, database.url)
    except BaseException:
        await database.drop()
        raise
    return database
