"""Admin pages under load: the schedules list and a detail page with a long history.

    python -m bench.list_page --size small|full

Builds N schedules (100 tenants with 4 organizations each, some system ones; cron and interval;
command and queue targets; a dozen source modules; a mix of last statuses, 10 % disabled) and
R finished runs, a fifth of them on one schedule (the "long history"), bulk-loaded with COPY.
Then it asks the real application in-process (httpx over ASGI: routing, session, permission
checks, queries and template rendering, no network) for each page K times and reports the
server time p50/p95, signed in as a superadmin (sees every schedule) and, for the list's
first page and a search, as a tenant admin (sees one organization's).

    python -m bench.list_page --size full --reuse

keeps the database (``mercato_bench_list_<size>``) and, when it already holds the data of that
size, skips the load (ten minutes of both cores at full size): the migrations are brought up to
date and the pages measured on the rows already there. Without ``--reuse`` the run has a
database of its own, dropped at the end (``--keep`` keeps it, and says its name).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import timedelta

import httpx
import sqlalchemy as sa

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
    utcnow,
    verdict,
)
from tests.support.databases import Database, fresh_database

SIZES = {
    "small": {"jobs": 100_000, "runs": 1_000_000, "repeat": 10},
    "full": {"jobs": 1_000_000, "runs": 10_000_000, "repeat": 30},
}
LIST = "/backend/config/scheduled-jobs"
LONG_HISTORY_JOB = "bench-long-history"
RUNS_SQL = """
INSERT INTO scheduled_job_runs (id, job_id, tenant_id, organization_id, scheduled_for, trigger, status, attempt,
    not_before, enqueued_at, started_at, finished_at, duration_ms, error_message, created_at)
SELECT gen_random_uuid()::text, j.id, j.tenant_id, j.organization_id, t, 'scheduled', s, 1, t, t, t,
       t + interval '12 milliseconds', 12, CASE WHEN s = 'failed' THEN 'boom' END, t
FROM {source}, generate_series(0, {count} - 1) AS g,
     LATERAL (SELECT $3::timestamptz - ({minutes}) * interval '1 minute' AS t,
                     CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END AS s) AS r
"""
MODULES = [
    "billing",
    "catalog",
    "orders",
    "search",
    "shipping",
    "payments",
    "customers",
    "inventory",
    "reports",
    "notifications",
    "sales",
    "auth",
]
WORDS = [
    "export",
    "import",
    "sync",
    "refresh",
    "report",
    "digest",
    "cleanup",
    "reindex",
    "invoice",
    "reminder",
    "backup",
    "feed",
    "price",
    "stock",
    "newsletter",
    "audit",
    "payout",
    "archive",
    "snapshot",
    "warmup",
]
STATUSES = ["succeeded"] * 85 + ["failed"] * 6 + ["skipped"] * 3 + ["missed"] * 2 + ["timed_out"] * 1 + [None] * 3
TENANTS = 100
ORGS_PER_TENANT = 4


def _job(i: int, now, rng: random.Random) -> dict:
    tenant = f"tenant-{i % TENANTS:03d}"
    org = f"{tenant}-org-{(i // TENANTS) % ORGS_PER_TENANT}"
    scope = "system" if i % 1000 == 0 else ("tenant" if i % 10 == 1 else "organization")
    word, other = rng.choice(WORDS), rng.choice(WORDS)
    cron = rng.random() < 0.7
    module = MODULES[i % len(MODULES)] if i % 3 else None
    queue = i % 4 == 0
    enabled = i % 10 != 7
    last = rng.choice(STATUSES)
    return job_row(
        f"{word}-{i:07d}" if i % 5 else f"{module or 'ops'}:{word}-{other}-{i}",
        now,
        scope_type=scope,
        tenant_id=None if scope == "system" else tenant,
        organization_id=org if scope == "organization" else None,
        name=f"{word.capitalize()} {other} {i}",
        description=f"{word} the {other} data of {tenant} every so often",
        schedule_type="cron" if cron else "interval",
        schedule_value=f"{i % 60} {i % 24} * * *" if cron else rng.choice(["15m", "1h", "6h", "1d"]),
        target_type="queue" if queue else "command",
        target_queue="bench-queue" if queue else None,
        target_command=None if queue else "demo.echo",
        is_enabled=enabled,
        next_run_at=now + timedelta(seconds=rng.randint(60, 86_400)) if enabled else None,
        last_run_at=now - timedelta(seconds=rng.randint(60, 86_400 * 7)) if last else None,
        last_status=last,
        source_type="module" if module else "user",
        source_module=module,
        created_at=now - timedelta(seconds=i),
        updated_at=now - timedelta(seconds=i // 2),
    )


async def build(size: str, *, reuse: bool = False) -> Database:
    """A database holding the data of ``size``: one of the run's own, or with ``reuse`` the
    named ``mercato_bench_list_<size>``, loaded only when this run made it."""
    sizes = SIZES[size]
    if not reuse:
        database = await fresh_pg("list")
    else:
        database = await fresh_database(name=f"{PREFIX}list_{size}", reuse=True, admin_dsn=PG_ADMIN)
        if not database.made:
            if not await _holds(database.url, size):
                raise SystemExit(
                    f"database {database.name} exists but does not hold the {size} data; drop it "
                    f"(dropdb {database.name}) or run without --reuse"
                )
            log(f"list page: reusing the {sizes['jobs']:,} schedules and {sizes['runs']:,} runs of {database.name}")
            return database
    try:
        await _load(database.url, sizes)
    except BaseException:
        await database.drop()  # half-loaded data is worth nothing to a later --reuse
        raise
    return database


async def _load(url: str, sizes: dict[str, int]) -> None:
    rng = random.Random(8)
    now = utcnow().replace(microsecond=0)
    started = time.perf_counter()
    jobs = [_job(i, now, rng) for i in range(1, sizes["jobs"])]
    jobs.append(
        job_row(
            LONG_HISTORY_JOB,
            now,
            name="Long history",
            description="one schedule with many runs",
            schedule_type="cron",
            schedule_value="* * * * *",
            next_run_at=now + timedelta(minutes=1),
            last_run_at=now - timedelta(minutes=1),
            last_status="succeeded",
        )
    )
    await copy_rows(url, "scheduled_jobs", jobs)
    # Runs are generated inside PostgreSQL: a fifth on the long-history schedule, the rest on every
    # fifth schedule, with distinct slots per schedule spread over six days.
    long = sizes["runs"] // 5
    per_job = (sizes["runs"] - long) // (len(jobs) // 5)
    conn = await pg_connect(url)
    try:
        await conn.execute(
            RUNS_SQL.format(
                source="(SELECT $1::text AS id, NULL::text AS tenant_id, "
                "NULL::text AS organization_id, 0::bigint AS n) AS j",
                count="$2",
                minutes="g + 1",
                failed="g % 17 = 0",
            ),
            LONG_HISTORY_JOB,
            long,
            now,
        )
        await conn.execute(
            RUNS_SQL.format(
                source="(SELECT id, tenant_id, organization_id, row_number() OVER () AS n "
                "FROM scheduled_jobs WHERE id <> $1 AND hashtext(id) % 5 = 0) AS j",
                count="$2",
                minutes="1 + (g * 97 + j.n) % 8640",
                failed="false",
            ),
            LONG_HISTORY_JOB,
            per_job,
            now,
        )
        total = await conn.fetchval("SELECT count(*) FROM scheduled_job_runs")
    finally:
        await conn.close()
    log(f"list page: loaded {len(jobs):,} schedules and {total:,} runs in {time.perf_counter() - started:.0f} s")
    await analyze(url)


async def _holds(url: str, size: str) -> bool:
    """Whether the database holds the data of ``size`` (its number of schedules, and the long
    history's runs)."""
    sizes = SIZES[size]
    conn = await pg_connect(url)
    try:
        jobs = await conn.fetchval("SELECT count(*) FROM scheduled_jobs")
        long = await conn.fetchval("SELECT count(*) FROM scheduled_job_runs WHERE job_id = $1", LONG_HISTORY_JOB)
    finally:
        await conn.close()
    return jobs == sizes["jobs"] and long == sizes["runs"] // 5


async def _client(runtime, email: str, **user):
    from app.domain.passwords import hash_password
    from app.persistence.models import User
    from app.web.app import create_app
    from app.web.auth import SESSION_COOKIE

    async with runtime.sessions.begin() as session:  # left by an earlier run on the same data (--reuse)
        await session.execute(sa.delete(User).where(User.email == email))
    await runtime.users.create(
        email, "benchmark password 1", "admin", password_hash=_HASH or hash_password("x" * 12), **user
    )
    async with runtime.sessions() as session:
        user_id = await session.scalar(sa.select(User.id).where(User.email == email))
    app = create_app(runtime.settings, run_scheduler=False, runtime=runtime)
    app.state.runtime = runtime
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.local")
    client.cookies.set(SESSION_COOKIE, await runtime.credentials.open_session(user_id))
    return client


_HASH = None


async def _time(client: httpx.AsyncClient, path: str, repeat: int, headers=None) -> tuple[float, float, int]:
    timings = []
    status = 0
    for attempt in range(repeat + 2):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        elapsed = time.perf_counter() - started
        status = response.status_code
        if status != 200:
            raise RuntimeError(f"GET {path}: {status}")
        if attempt >= 2:  # the first two warm caches (templates, statement cache)
            timings.append(elapsed)
    return pct(timings, 50), pct(timings, 95), len(response.content)


def scenarios(size: str) -> list[tuple[str, str]]:
    deep = 400 if size == "small" else 4000
    return [
        ("first page", LIST),
        ("search 'export' (common)", f"{LIST}?q=export"),
        ("search 'invoice-00' (id fragment)", f"{LIST}?q=invoice-00"),
        ("search with no match", f"{LIST}?q=zzzz-nothing"),
        ("filter enabled=false", f"{LIST}?enabled=false"),
        ("filter scope=tenant", f"{LIST}?scope=tenant"),
        ("filter scope=system", f"{LIST}?scope=system"),
        ("filter target=queue", f"{LIST}?target=queue"),
        ("filter type=interval", f"{LIST}?type=interval"),
        ("filter source=module:billing", f"{LIST}?source=module:billing"),
        ("filter status=timed_out", f"{LIST}?status=timed_out"),
        ("filters combined (queue, failed)", f"{LIST}?target=queue&status=failed"),
        ("sort name desc", f"{LIST}?sort=name&order=desc"),
        ("sort next run asc", f"{LIST}?sort=nextRunAt"),
        ("sort next run desc", f"{LIST}?sort=nextRunAt&order=desc"),
        ("sort last run asc", f"{LIST}?sort=lastRunAt"),
        ("sort last run desc", f"{LIST}?sort=lastRunAt&order=desc"),
        (f"deep page ({deep}, 25 a page)", f"{LIST}?page={deep}"),
        ("table fragment (htmx), page 2", f"{LIST}?page=2"),
    ]


async def main(size: str, *, keep: bool = False, reuse: bool = False) -> Table:
    global _HASH
    from app.domain.passwords import hash_password

    _HASH = hash_password("benchmark password 1")
    sizes = SIZES[size]
    database = await build(size, reuse=reuse)
    runtime = bench_runtime(database.url)
    table = Table(
        f"Admin pages: {sizes['jobs']:,} schedules, {sizes['runs']:,} runs (server time, in-process)",
        ["page", "as", "p50", "p95", "target p95", ""],
    )
    try:
        root = await _client(runtime, "root@bench.test", is_superadmin=True)
        tenant = await _client(runtime, "owner@bench.test", tenant_id="tenant-007", organization_id="tenant-007-org-1")
        repeat = sizes["repeat"]
        for label, path in scenarios(size):
            headers = {"HX-Request": "true", "HX-Target": "jobs-table"} if "htmx" in label else None
            p50, p95, _ = await _time(root, path, repeat, headers)
            table.add(label, "superadmin", ms(p50), ms(p95), "< 100 ms", verdict(p95, 0.1))
        for label, path in (
            ("first page", LIST),
            ("search 'export'", f"{LIST}?q=export"),
            ("sort last run desc", f"{LIST}?sort=lastRunAt&order=desc"),
        ):
            p50, p95, _ = await _time(tenant, path, repeat)
            table.add(label, "tenant admin", ms(p50), ms(p95), "< 100 ms", verdict(p95, 0.1))
        detail = f"{LIST}/{LONG_HISTORY_JOB}"
        for label, path in (
            ("detail, long history", detail),
            ("detail, history page 100", f"{detail}?runs_page=100"),
            ("detail, history status=failed", f"{detail}?status=failed"),
        ):
            p50, p95, _ = await _time(root, path, repeat)
            table.add(
                f"{label} ({sizes['runs'] // 5:,} runs)", "superadmin", ms(p50), ms(p95), "< 50 ms", verdict(p95, 0.05)
            )
        await root.aclose()
        await tenant.aclose()
    finally:
        await runtime.close()
        if keep or reuse:
            log(f"list page: kept database {database.name}")
        else:
            await database.drop()
    table.notes.append(
        f"{sizes['repeat']} requests per page after 2 warm-up requests; the tenant admin sees one "
        f"organization's schedules ({sizes['jobs'] // TENANTS // ORGS_PER_TENANT:,} or so) plus the tenant's."
    )
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--keep", action="store_true", help="Keep the database (its name is printed) to explore plans.")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the database, and skip the load when it already holds the data of this size.",
    )
    args = parser.parse_args()
    print(asyncio.run(main(args.size, keep=args.keep, reuse=args.reuse)).render())
