"""The server under hostile load: is it still answering, and still firing on time?

    python -m bench.hostile_load --size small|full

Starts ``mercato serve`` (web app and local poller in one process, as shipped) on a PostgreSQL
database of its own (a fresh name, dropped at the end), with schedules that fire every second.
Then, phase after phase, it probes ``/healthz`` every 50 ms and reads the firing lag (slot ->
run started) from the run rows of the phase:

- quiet: nothing else happening (the baseline);
- import, manager: the largest import a file may hold (5,000 schedules, just under the size
  limit), again and again (the first creates, the next find them unchanged);
- import, view-only: a 4 MB file of a million list items, four at a time, again and again
  (refused before it is read);
- logins: 40 at once, half with a wrong password, again and again (each from an address and for
  an account of its own, so the login throttle does not step in).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
import yaml

from app.domain.passwords import hash_password
from app.persistence.models import Organization, ScheduledJobRun, Tenant
from bench.support import MercatoProcess, Table, bench_runtime, fresh_pg, log, ms, pct, utcnow

SIZES = {"small": {"seconds": 15, "every_second": 20}, "full": {"seconds": 60, "every_second": 100}}
PASSWORD = "correct horse battery staple"
MANAGER, VIEWER = "manager@acme.test", "viewer@acme.test"
LOGIN_USERS = 200
PROBE_EVERY = 0.05


# ----- setup -------------------------------------------------------------------------------


async def seed(url: str, every_second: int) -> dict[str, str]:
    """Users, their tokens and the every-second schedules; returns the API tokens by email."""
    runtime = bench_runtime(url)
    try:
        now = utcnow()
        async with runtime.sessions.begin() as session:
            session.add(Tenant(id="acme", name="Acme", features=[], created_at=now))
            await session.flush()
            session.add(Organization(id="acme-eu", tenant_id="acme", name="Acme EU", created_at=now))
        hashed = hash_password(PASSWORD)  # once: Argon2 is slow on purpose
        tokens = {}
        for email, role in ((MANAGER, "admin"), (VIEWER, "employee")):
            user = await runtime.users.create(
                email, PASSWORD, role, tenant_id="acme", organization_id="acme-eu", password_hash=hashed
            )
            tokens[email] = (await runtime.credentials.issue_token(user.id, "bench")).secret
        for i in range(LOGIN_USERS):
            await runtime.users.create(
                f"user{i}@acme.test",
                PASSWORD,
                "employee",
                tenant_id="acme",
                organization_id="acme-eu",
                password_hash=hashed,
            )
        for i in range(every_second):
            await runtime.scheduler.create(
                {
                    "id": f"every-second-{i}",
                    "name": f"Every second {i}",
                    "scope_type": "system",
                    "schedule_type": "cron",
                    "schedule_value": "* * * * * *",
                    "target_type": "command",
                    "target_command": "demo.echo",
                    "target_payload": {"message": "tick"},
                }
            )
        return tokens
    finally:
        await runtime.close()


def largest_import(limit: int) -> bytes:
    """As many valid schedules as a file may hold (5,000), checked to fit under ``limit``."""
    items = [
        {
            "id": f"imported:{i}",
            "name": f"Imported {i}",
            "scopeType": "organization",
            "tenantId": "acme",
            "organizationId": "acme-eu",
            "scheduleValue": f"{i % 60} 3 * * *",
            "timezone": "Europe/Warsaw",
            "targetType": "command",
            "targetCommand": "demo.echo",
            "targetPayload": {"message": f"imported {i}"},
            "catchUpPolicy": "skip",
            "overlapPolicy": "allow",
            "jitterSeconds": 0,
            "maxRetries": 0,
        }
        for i in range(5_000)
    ]
    body = yaml.safe_dump({"version": 1, "schedules": items}, sort_keys=False).encode()
    assert len(body) <= limit, f"{len(body)} bytes: over the import limit"
    return body


def million_items() -> bytes:
    return b"version: 1\nschedules:\n" + b"- 1\n" * 1_000_000


class Server(MercatoProcess):
    """``mercato serve`` in a child process, on a free port."""

    def __init__(self, url: str, log_path: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        super().__init__(
            url,
            log_path,
            SCHEDULER_MIN_INTERVAL_SECONDS="1",
            LOG_LEVEL="warning",
            # Each login comes with an X-Forwarded-For address of its own, as from many clients
            # behind one proxy: believed only from a trusted proxy, so the throttle (30 failures
            # an hour per address) measures nothing here and every round checks 40 passwords.
            TRUSTED_PROXIES="127.0.0.1",
        )

    async def start(self) -> None:
        await self.spawn("serve", "--port", str(self.port))
        async with httpx.AsyncClient(base_url=self.base) as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"mercato serve did not answer; see {self.log_path}")


# ----- load --------------------------------------------------------------------------------


async def probe(base: str, until: float) -> list[float]:
    """``/healthz`` every 50 ms until ``until`` (monotonic): each answer's latency."""
    latencies = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        while time.monotonic() < until:
            asked = time.perf_counter()
            try:
                await client.get("/healthz")
            except httpx.TimeoutException:
                pass  # counted at the timeout: the server did not answer in a minute
            latencies.append(time.perf_counter() - asked)
            await asyncio.sleep(PROBE_EVERY)
    return latencies


async def repeat(until: float, action, concurrency: int = 1) -> list[str]:
    outcomes: list[str] = []

    async def worker() -> None:
        while time.monotonic() < until:
            try:
                outcomes.append(await action())
            except httpx.TimeoutException:
                outcomes.append("timeout")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def importer(base: str, token: str, body: bytes):
    async def one() -> str:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            response = await client.post(
                "/api/scheduler/import",
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"},
            )
            return str(response.status_code)

    return one


def login_rounds(base: str):
    counter = iter(range(10**9))

    async def attempt(n: int) -> str:
        good = n % 2 == 0
        address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"  # each attempt from an address of its own
        async with httpx.AsyncClient(base_url=base, timeout=120, headers={"X-Forwarded-For": address}) as client:
            page = await client.get("/login")
            csrf = page.text.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
            response = await client.post(
                "/login",
                data={
                    "email": f"user{n % LOGIN_USERS}@acme.test",
                    "password": PASSWORD if good else "wrong password!",
                    "_csrf": csrf,
                },
            )
            return f"{'right' if good else 'wrong'} {response.status_code}"

    async def round_of_40() -> str:
        results = await asyncio.gather(*(attempt(next(counter)) for _ in range(40)))
        return ",".join(sorted(set(results)))

    return round_of_40


async def lag(url: str, since: datetime, until: datetime) -> list[float]:
    """Slot -> run started, for the scheduled runs of the every-second schedules in a window."""
    runtime = bench_runtime(url)
    try:
        async with runtime.sessions() as session:
            rows = (
                await session.execute(
                    sa.select(ScheduledJobRun.scheduled_for, ScheduledJobRun.started_at).where(
                        ScheduledJobRun.job_id.like("every-second-%"),
                        ScheduledJobRun.scheduled_for >= since,
                        ScheduledJobRun.scheduled_for < until,
                    )
                )
            ).all()
    finally:
        await runtime.close()
    return [(started - slot).total_seconds() if started else float("inf") for slot, started in rows]


async def phase(server: Server, url: str, name: str, seconds: float, load=None, concurrency: int = 1):
    log(f"hostile_load: {name}, {seconds:g} s")
    since = datetime.now(UTC)
    until = time.monotonic() + seconds
    tasks = [probe(server.base, until)]
    if load is not None:
        tasks.append(repeat(until, load, concurrency))
    results = await asyncio.gather(*tasks)
    ended = datetime.now(UTC)
    await asyncio.sleep(3)  # the last slots' runs start
    lags = await lag(url, since, ended)
    outcomes = results[1] if load is not None else []
    return results[0], lags, outcomes


async def main(size: str) -> Table:
    sizes = SIZES[size]
    database = await fresh_pg("hostile")  # a database of this run's own
    name, url = database.name, database.url
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"mercato-{name}.log"
    table = Table(
        f"The server under hostile load (mercato serve, {sizes['every_second']} schedules firing every "
        "second, PostgreSQL)",
        ["phase", "healthz p50", "healthz p99", "healthz max", "lag p50", "lag p99", "lag max", "runs", "answers"],
    )
    server = None
    try:
        tokens = await seed(url, sizes["every_second"])
        server = Server(url, log_path)
        await server.start()
        limit = int(os.environ.get("SCHEDULER_MAX_IMPORT_BYTES", 2 * 1024 * 1024))
        await asyncio.sleep(5)  # the poller settles
        phases = [
            ("quiet", None, 1),
            ("import, manager (5,000 schedules)", importer(server.base, tokens[MANAGER], largest_import(limit)), 1),
            ("import, view-only (4 MB, x4 at once)", importer(server.base, tokens[VIEWER], million_items()), 4),
            ("40 logins at once (half wrong)", login_rounds(server.base), 1),
        ]
        for label, load, concurrency in phases:
            probes, lags, outcomes = await phase(server, url, label, sizes["seconds"], load, concurrency)
            answers = {o: outcomes.count(o) for o in sorted(set(outcomes))}
            table.add(
                label,
                ms(pct(probes, 50)),
                ms(pct(probes, 99)),
                ms(max(probes, default=float("nan"))),
                ms(pct(lags, 50)),
                ms(pct(lags, 99)),
                ms(max(lags, default=float("nan"))),
                f"{len(lags):,}",
                "; ".join(f"{k} x{v}" for k, v in answers.items()) or "-",
            )
    finally:
        if server is not None:
            await server.stop()
        await database.drop()
    table.notes += [
        f"Each phase {sizes['seconds']} s; /healthz asked every {PROBE_EVERY * 1000:g} ms by one client; lag is "
        "run started minus its slot, over the scheduled runs whose slot fell in the phase.",
        "answers: HTTP statuses of the load's requests (imports: one per request; logins: the set per round of 40).",
        f"Server log: {log_path}",
    ]
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    print(asyncio.run(main(parser.parse_args().size)).render())
