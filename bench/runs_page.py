"""All runs across schedules: the Runs page and ``GET /api/scheduler/runs`` at scale.

    python -m bench.runs_page --size small|full [--reuse] [--keep]

Builds S schedules (100 tenants with 4 organizations each; a tenth tenant-scoped, one in a
hundred system schedules, one in twenty deleted) and R runs spread evenly over the last seven
days (the retention), oldest first as a scheduler writes them: nine in ten succeeded, 5 %
failed, 1 % timed out, some skipped and missed, the newest few still queued or running; a
tenth manual, catch-up or retry. The runs are generated inside PostgreSQL (``generate_series``)
with the table's secondary indexes dropped and then built again from the models, which is how
ten million load in minutes. Then the real application is asked in-process (httpx over ASGI:
routing, session, permission checks, queries and templates) for each view K times, and the
server time p50/p95 is reported: the first page (superadmin, tenant admin), failed in the last
hour, counts for 24 hours, a schedule-name search and a deep page.

``--reuse`` keeps the database (``mercato_bench_runs_<size>``) and skips the load when it holds
the data already (brings the migrations up to date first); ``--keep`` keeps the run's own one.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.persistence.models import ScheduledJobRun
from bench.support import (
    PG_ADMIN,
    PREFIX,
    Table,
    analyze,
    bench_runtime,
    copy_rows,
    fresh_pg,
    job_row,
    log,
    ms,
    pct,
    pg_connect,
    signed_in_client,
    utcnow,
    verdict,
)
from tests.support.databases import Database, fresh_database

SIZES = {
    "small": {"jobs": 2_000, "runs": 200_000, "repeat": 10},
    "full": {"jobs": 10_000, "runs": 10_000_000, "repeat": 30},
}
RUNS = "/backend/config/scheduled-jobs/runs"
API = "/api/scheduler/runs"
TENANTS = 100
ORGS_PER_TENANT = 4
TENANT_ADMIN = {"tenant_id": "tenant-007", "organization_id": "tenant-007-org-1"}
WORDS = ["export", "import", "sync", "refresh", "report", "digest", "cleanup", "reindex", "invoice", "reminder"]
#: The runs, oldest first: run g is of schedule g mod S, created (7 days / R) after run g - 1.
RUNS_SQL = """
INSERT INTO scheduled_job_runs (id, job_id, tenant_id, organization_id, scheduled_for, trigger, triggered_by,
    status, reason, attempt, not_before, enqueued_at, started_at, finished_at, duration_ms, error_message,
    error_stack, created_at)
SELECT lpad(to_hex(g), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(g % 65536), 12, '0'),
       j.id, j.tenant_id, j.organization_id, t,
       CASE WHEN g % 97 = 1 THEN 'manual' WHEN g % 89 = 2 THEN 'catch_up' WHEN s IN ('failed', 'timed_out')
            AND g % 3 = 0 THEN 'retry' ELSE 'scheduled' END,
       CASE WHEN g % 97 = 1 THEN 'ops@bench.test' END,
       s, CASE WHEN s IN ('skipped', 'missed') THEN 'the previous run was still running' END,
       1, t, t, CASE WHEN s NOT IN ('queued', 'skipped', 'missed') THEN t END,
       CASE WHEN s IN ('succeeded', 'failed', 'timed_out') THEN t + interval '120 milliseconds' END,
       CASE WHEN s IN ('succeeded', 'failed', 'timed_out') THEN 120 END,
       CASE WHEN s = 'failed' THEN 'ConnectionError: supplier API answered 503' WHEN s = 'timed_out'
            THEN 'timed out after 30 s' END,
       CASE WHEN s = 'failed' THEN 'Traceback (most recent call last):\n  ...\nConnectionError: 503' END,
       t
FROM generate_series(0, $1::bigint - 1) AS g
JOIN bench_jobs AS j ON j.n = g % $2
CROSS JOIN LATERAL (SELECT $3::timestamptz - ($1::bigint - 1 - g) * $4::interval AS t,
    CASE WHEN g >= $1::bigint - 20 THEN (CASE WHEN g % 2 = 0 THEN 'queued' ELSE 'running' END)
         WHEN g % 20 = 3 THEN 'failed' WHEN g % 100 = 7 THEN 'timed_out' WHEN g % 50 = 11 THEN 'skipped'
         WHEN g % 100 = 13 THEN 'missed' ELSE 'succeeded' END AS s) AS r
"""


def _job(i: int, now, rng: random.Random) -> dict:
    tenant = f"tenant-{i % TENANTS:03d}"
    org = f"{tenant}-org-{(i // TENANTS) % ORGS_PER_TENANT}"
    scope = "system" if i % 100 == 0 else ("tenant" if i % 10 == 1 else "organization")
    word, other = rng.choice(WORDS), rng.choice(WORDS)
    return job_row(
        f"{word}-{i:06d}",
        now,
        scope_type=scope,
        tenant_id=None if scope == "system" else tenant,
        organization_id=org if scope == "organization" else None,
        name=f"{word.capitalize()} {other} {i}",
        schedule_type="cron",
        schedule_value=f"{i % 60} * * * *",
        deleted_at=now if i % 20 == 9 else None,
    )


async def build(size: str, *, reuse: bool = False) -> Database:
    sizes = SIZES[size]
    if not reuse:
        database = await fresh_pg("runs")
    else:
        database = await fresh_database(name=f"{PREFIX}runs_{size}", reuse=True, admin_dsn=PG_ADMIN)
        if not database.made:
            conn = await pg_connect(database.url)
            try:
                runs = await conn.fetchval("SELECT count(*) FROM scheduled_job_runs")
            finally:
                await conn.close()
            if runs != sizes["runs"]:
                raise SystemExit(
                    f"database {database.name} does not hold the {size} data; drop it or run without --reuse"
                )
            log(f"runs page: reusing the {runs:,} runs of {database.name}")
            await _build_indexes(database.url)  # indexes added by a newer migration
            return database
    try:
        await _load(database.url, sizes)
    except BaseException:
        await database.drop()
        raise
    return database


def _index_ddl() -> list[tuple[str, str]]:
    dialect = postgresql.dialect()
    return [
        (index.name or "", str(sa.schema.CreateIndex(index).compile(dialect=dialect)))
        for index in sorted(ScheduledJobRun.__table__.indexes, key=lambda ix: ix.name or "")
    ]


async def _build_indexes(url: str) -> float:
    """The runs table's indexes as the models declare them, those missing built now; seconds taken."""
    conn = await pg_connect(url)
    started = time.perf_counter()
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for name, ddl in _index_ddl():
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
                await conn.execute(ddl)
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _load(url: str, sizes: dict[str, int]) -> None:
    rng = random.Random(6)
    now = utcnow().replace(microsecond=0)
    started = time.perf_counter()
    jobs = [_job(i, now, rng) for i in range(sizes["jobs"])]
    await copy_rows(url, "scheduled_jobs", jobs)
    conn = await pg_connect(url)
    try:
        for name, _ in _index_ddl():
            await conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        await conn.execute(
            "CREATE UNLOGGED TABLE bench_jobs AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, tenant_id, "
            "organization_id FROM scheduled_jobs"
        )
        await conn.execute("CREATE UNIQUE INDEX ON bench_jobs (n)")
        step = timedelta(seconds=7 * 86_400 / sizes["runs"])
        await conn.execute(RUNS_SQL, sizes["runs"], len(jobs), now, step)
        await conn.execute("DROP TABLE bench_jobs")
    finally:
        await conn.close()
    loaded = time.perf_counter() - started
    indexed = await _build_indexes(url)
    await analyze(url)
    log(f"runs page: {len(jobs):,} schedules, {sizes['runs']:,} runs: {loaded:.0f} s to load, {indexed:.0f} s to index")


async def _time(client, path: str, repeat: int) -> tuple[float, float]:
    timings = []
    for attempt in range(repeat + 2):
        started = time.perf_counter()
        response = await client.get(path)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
        if attempt >= 2:  # the first two warm caches (templates, statement cache)
            timings.append(elapsed)
    return pct(timings, 50), pct(timings, 95)


def scenarios(size: str) -> list[tuple[str, str, str]]:
    deep = 400  # 10,000 runs before it
    return [
        ("first page", "superadmin", RUNS),
        ("first page", "tenant admin", RUNS),
        ("failed in the last hour", "superadmin", f"{RUNS}?status=failed&since=1h"),
        ("failed in the last hour", "tenant admin", f"{RUNS}?status=failed&since=1h"),
        ("counts for 24 hours", "superadmin", f"{RUNS}?since=24h"),
        ("counts for 24 hours", "tenant admin", f"{RUNS}?since=24h"),
        ("schedule-name search 'invoice'", "superadmin", f"{RUNS}?q=invoice"),
        ("schedule-name search 'invoice'", "tenant admin", f"{RUNS}?q=invoice"),
        ("one schedule, failed", "superadmin", f"{RUNS}?job=report-000042&status=failed"),
        ("one tenant", "superadmin", f"{RUNS}?tenant=tenant-042"),
        (f"deep page ({deep}, 25 a page)", "superadmin", f"{RUNS}?page={deep}"),
        (f"deep page ({deep}, 25 a page)", "tenant admin", f"{RUNS}?page={deep}"),
        ("API: failed in the last hour", "superadmin", f"{API}?status=failed&since=1h"),
        ("API: first page", "tenant admin", API),
    ]


async def main(size: str, *, keep: bool = False, reuse: bool = False) -> Table:
    sizes = SIZES[size]
    database = await build(size, reuse=reuse)
    runtime = bench_runtime(database.url)
    table = Table(
        f"All runs: {sizes['runs']:,} runs of {sizes['jobs']:,} schedules (server time, in-process)",
        ["view", "as", "p50", "p95", "target p95", ""],
    )
    try:
        for tenant in {TENANT_ADMIN["tenant_id"]}:
            await runtime.users.ensure_scope(tenant, TENANT_ADMIN["organization_id"])
        clients = {
            "superadmin": await signed_in_client(runtime, "root@bench.test", is_superadmin=True),
            "tenant admin": await signed_in_client(runtime, "owner@bench.test", **TENANT_ADMIN),
        }
        for label, who, path in scenarios(size):
            p50, p95 = await _time(clients[who], path, sizes["repeat"])
            table.add(label, who, ms(p50), ms(p95), "< 100 ms", verdict(p95, 0.1))
        for client in clients.values():
            await client.aclose()
    finally:
        await runtime.close()
        if keep or reuse:
            log(f"runs page: kept database {database.name}")
        else:
            await database.drop()
    table.notes.append(
        f"{sizes['repeat']} requests per view after 2 warm-up requests. The tenant admin is of one "
        f"organization ({TENANT_ADMIN['organization_id']}): its runs and its tenant's, about "
        f"{sizes['runs'] // TENANTS * 3 // 10:,} of {sizes['runs']:,}. Every page shows the counts by status."
    )
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--keep", action="store_true", help="Keep the database (its name is printed).")
    parser.add_argument(
        "--reuse", action="store_true", help="Keep the database and skip the load when it holds the data."
    )
    args = parser.parse_args()
    print(asyncio.run(main(args.size, keep=args.keep, reuse=args.reuse)).render())
