"""The async engine and session factory, tuned per backend."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, InternalError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

log = logging.getLogger("mercato.database")
T = TypeVar("T")


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # Every statement planned for its parameters and the table as it is now. asyncpg keeps
    # statements prepared, and after five executions PostgreSQL may switch a prepared statement
    # to a generic plan for good: one made while the run table was empty (a quiet hour) read
    # every queued run once per run taken when a burst of ten thousand arrived (a nested loop
    # over two sequential scans, 150-250 ms a take instead of 2 ms). Planning these statements
    # again costs a fraction of a millisecond.
    server_settings = {"plan_cache_mode": "force_custom_plan"}
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, connect_args={"server_settings": server_settings}
    )
    _ping_idle_connections(engine)
    return engine


#: A pooled connection idle longer than this is pinged before it is used again (a server
#: restart, a failover or a proxy's idle timeout is found before the query, not by it). One used
#: a moment ago is taken to be alive: with asyncpg a ping is three round trips (BEGIN, a query,
#: ROLLBACK), which would double the cost of the scheduler's short transactions.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    def checkin(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool drops this connection and checks out (or opens) another one.
            raise DisconnectionError(f"pooled connection lost while idle: {exc}") from exc

    event.listen(engine.sync_engine, "checkin", checkin)
    event.listen(engine.sync_engine, "checkout", checkout)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes concurrent writers
    # (several pollers, the web app) wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


#: PostgreSQL's "try the transaction again" errors: deadlock detected, serialization failure.
RETRYABLE_SQLSTATES = ("40P01", "40001")


def is_transient(exc: BaseException) -> bool:
    """The connection went away (server restart, failover, terminated connection), or the
    server chose this transaction as a deadlock's victim: the same transaction may succeed."""
    if isinstance(exc, DBAPIError):
        if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
            return True
        # InternalError: asyncpg's "another operation is in progress" on a connection cut mid-use.
        return exc.connection_invalidated or isinstance(exc, (InterfaceError, InternalError, OperationalError))
    return isinstance(exc, OSError)  # connection refused while the server restarts


async def retry_transient(
    operation: Callable[[], Awaitable[T]], *, attempts: int = 10, first_delay: float = 0.1, max_delay: float = 5.0
) -> T:
    """``await operation()``, and again (with a growing pause, ~20 s in all) when it failed for
    a transient reason (``is_transient``). For whole transactions whose writes are conditional:
    one that did commit before the connection went is a no-op when replayed."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            log.warning("database transaction failed (%s); trying again in %.1f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
