"""What every benchmark shares: its own PostgreSQL database, fast bulk loads, percentiles, a table.

Each benchmark builds its data in a database of its own (``mercato_bench_<name>_<pid>_<hex>``,
made for the run and dropped after it, see ``tests.support.databases``), never in a test
database. Rows are loaded with PostgreSQL ``COPY`` (``asyncpg.copy_records_to_table``), not
through the ORM: a million schedules load in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

from app.domain.passwords import hash_password
from app.persistence.migrate import upgrade
from app.persistence.models import ScheduledJob, ScheduledJobRun, User
from app.runtime import Runtime
from app.settings import load_settings
from app.strategies.notify import asyncpg_dsn
from app.web.app import create_app
from app.web.auth import SESSION_COOKIE
from tests.support.databases import Database, fresh_database

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "mercato_bench_"
ROOT = Path(__file__).resolve().parent.parent
JOB_COLUMNS = [c.name for c in ScheduledJob.__table__.columns]
RUN_COLUMNS = [c.name for c in ScheduledJobRun.__table__.columns]


# ----- databases ---------------------------------------------------------------------------


async def fresh_pg(name: str) -> Database:
    """A database of this run's own (``mercato_bench_<name>_<pid>_<hex>``), migrated to head;
    ``await database.drop()`` when done."""
    return await fresh_database(PREFIX + name, admin_dsn=PG_ADMIN)


def fresh_sqlite(directory: Path, name: str) -> str:
    url = f"sqlite+aiosqlite:///{directory / name}.sqlite3"
    upgrade(url)
    return url


def bench_runtime(url: str, **overrides: Any) -> Runtime:
    """A runtime on ``url``: 1-second minimum interval, 1-second poll, plus ``overrides``."""
    env = {"DATABASE_URL": url, "SCHEDULER_POLL_INTERVAL_MS": "1000"}
    settings = replace(load_settings(env), scheduler_min_interval_seconds=1, **overrides)
    return Runtime.create(settings)


async def pg_connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(url))


async def analyze(url: str) -> None:
    conn = await pg_connect(url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# ----- rows --------------------------------------------------------------------------------


def job_row(job_id: str, now: datetime, **values: Any) -> dict[str, Any]:
    """A complete ``scheduled_jobs`` row, the way the service would write it (no-op target)."""
    row = {
        "id": job_id,
        "scope_type": "system",
        "tenant_id": None,
        "organization_id": None,
        "name": f"bench {job_id}",
        "description": "",
        "schedule_type": "interval",
        "schedule_value": "1h",
        "timezone": "UTC",
        "anchor_at": now,
        "target_type": "command",
        "target_queue": None,
        "target_command": "demo.echo",
        "target_payload": "{}",
        "require_feature": None,
        "is_enabled": True,
        "paused_at": None,
        "paused_by": None,
        "pause_note": None,
        "catch_up_policy": "latest",
        "catch_up_window_seconds": 86_400,
        "overlap_policy": "allow",
        "jitter_seconds": 0,
        "timeout_seconds": None,
        "max_retries": 0,
        "retry_backoff_seconds": 30,
        "start_at": None,
        "end_at": None,
        "max_runs": None,
        "run_count": 0,
        "next_run_at": None,
        "last_run_at": None,
        "last_status": None,
        "source_type": "user",
        "source_module": None,
        "version": 1,
        "created_by": "bench",
        "updated_by": "bench",
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "deleted_by": None,
    }
    row.update(values)
    return row


def run_row(job_id: str, slot: datetime, **values: Any) -> dict[str, Any]:
    """A finished ``scheduled_job_runs`` row (succeeded, 12 ms)."""
    row = {
        "id": str(uuid.uuid4()),
        "job_id": job_id,
        "tenant_id": None,
        "organization_id": None,
        "scheduled_for": slot,
        "trigger": "scheduled",
        "triggered_by": None,
        "status": "succeeded",
        "reason": None,
        "attempt": 1,
        "not_before": slot,
        "enqueued_at": slot,
        "started_at": slot,
        "finished_at": slot + timedelta(milliseconds=12),
        "duration_ms": 12,
        "error_message": None,
        "error_stack": None,
        "result": None,
        "queue_job_id": None,
        "lease_expires_at": None,
        "created_at": slot,
        "payload": None,
        "cancel_requested_at": None,
        "cancelled_by": None,
    }
    row.update(values)
    return row


async def copy_rows(url: str, table: str, rows: Iterable[dict[str, Any]], *, chunk: int = 50_000) -> int:
    """Bulk-load ``rows`` into ``table`` with COPY; returns how many."""
    columns = JOB_COLUMNS if table == "scheduled_jobs" else RUN_COLUMNS
    conn = await pg_connect(url)
    total = 0
    try:
        batch: list[tuple] = []
        for row in rows:
            batch.append(tuple(_copy_value(row[c]) for c in columns))
            if len(batch) >= chunk:
                await conn.copy_records_to_table(table, records=batch, columns=columns)
                total += len(batch)
                batch = []
        if batch:
            await conn.copy_records_to_table(table, records=batch, columns=columns)
            total += len(batch)
    finally:
        await conn.close()
    return total


def _copy_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


async def insert_rows_sqlite(runtime: Runtime, model, rows: Sequence[dict[str, Any]], *, chunk: int = 5_000) -> None:
    """Multi-row INSERTs (SQLite has no COPY)."""
    table = model.__table__
    for start in range(0, len(rows), chunk):
        batch = [
            {k: (json.loads(v) if k in ("target_payload",) and isinstance(v, str) else v) for k, v in r.items()}
            for r in rows[start : start + chunk]
        ]
        async with runtime.engine.begin() as conn:
            await conn.execute(table.insert(), batch)


# ----- figures -----------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))]


def ms(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    return f"{seconds * 1000:,.1f} ms" if seconds < 0.1 else f"{seconds * 1000:,.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:,.2f} s" if seconds < 100 else f"{seconds:,.0f} s"


def verdict(value: float, target: float) -> str:
    """ "ok" or how far over the target ``value`` is (both in the same unit)."""
    if value != value:
        return "-"
    return "ok" if value < target else f"missed ×{value / target:.1f}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Table:
    """One benchmark's printed result: a title, columns, rows and notes."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        widths = [
            max(len(c), *(len(r[i]) for r in self.rows)) if self.rows else len(c) for i, c in enumerate(self.columns)
        ]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        out = [f"## {self.title}", "", line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        out += [""] + [f"  {n}" for n in self.notes] if self.notes else []
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"| {' | '.join(self.columns)} |", f"|{'|'.join('---' for _ in self.columns)}|"]
        out += [f"| {' | '.join(r)} |" for r in self.rows]
        return "\n".join(out)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def log(message: str) -> None:
    print(f"  · {message}", flush=True)


# ----- a scheduler in a process of its own -------------------------------------------------


class MercatoProcess:
    """A ``mercato`` command in a child process on ``url`` (local strategy, JSON logs to
    ``log_path``), stopped with SIGTERM."""

    def __init__(self, url: str, log_path: Path, **env: str) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "QUEUE_STRATEGY": "local",
            "LOG_FORMAT": "json",
            "SCHEDULER_POLL_INTERVAL_MS": "1000",
            **env,
        }
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def spawn(self, *args: str, stdout: int | None = None) -> asyncio.subprocess.Process:
        """Run ``mercato <args>``; stdout to ``stdout`` (a pipe) or the log, stderr to the log."""
        self._log = open(self.log_path, "ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            *args,
            env=self.env,
            stdout=self._log if stdout is None else stdout,
            stderr=self._log,
            cwd=str(ROOT),
        )
        return self.proc

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self.proc:
            self._log.close()


class SchedulerProcess(MercatoProcess):
    """``mercato scheduler start`` in a child process, with its memory and CPU read from /proc.

    A process of its own, as in production: what the benchmark does to observe it (queries,
    timers) does not share the scheduler's event loop or count towards its memory.
    """

    async def start(self) -> None:
        proc = await self.spawn("scheduler", "start", stdout=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if b"scheduler started" not in line:
            raise RuntimeError(f"scheduler did not start: {line!r}; see {self.log_path}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> tuple[float, float]:
        """(resident now, peak resident) in MiB."""
        status = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


# ----- the application, signed in ----------------------------------------------------------

_BENCH_PASSWORD = "benchmark password 1"
_password_hash: str | None = None


async def signed_in_client(runtime: Runtime, email: str, **user: Any) -> httpx.AsyncClient:
    """An httpx client of the real app, in-process (ASGI), with a session of a new admin
    ``email`` (``user``: tenant_id, organization_id, is_superadmin); replaces an earlier one."""
    global _password_hash
    _password_hash = _password_hash or hash_password(_BENCH_PASSWORD)  # Argon2 is slow on purpose: once
    async with runtime.sessions.begin() as session:  # left by an earlier run on the same data (--reuse)
        await session.execute(sa.delete(User).where(User.email == email))
    await runtime.users.create(email, _BENCH_PASSWORD, "admin", password_hash=_password_hash, **user)
    async with runtime.sessions() as session:
        user_id = await session.scalar(sa.select(User.id).where(User.email == email))
    app = create_app(runtime.settings, run_scheduler=False, runtime=runtime)
    app.state.runtime = runtime
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.local")
    client.cookies.set(SESSION_COOKIE, await runtime.credentials.open_session(user_id))
    return client
