"""Real processes report themselves: ``mercato serve`` (its poller), ``mercato scheduler start``,
``mercato worker scheduler`` and ``mercato worker start`` show up live in
``GET /api/scheduler/processes`` and ``mercato scheduler status``, and stopped after a clean stop.

PostgreSQL is the test database; the async half uses this folder's Redis database.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from app.runtime import Runtime
from app.settings import load_settings
from tests.support.cli import mercato
from tests.support.databases import TABLES
from tests.support.redis_databases import STRATEGIES_REDIS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
API = "/api/scheduler"
#: One heartbeat a second: a process is taken for gone three seconds after its last.
FAST = {"SCHEDULER_HEARTBEAT_SECONDS": "1", "DATABASE_POOL_SIZE": "2", "LOG_FORMAT": "json"}


class Proc:
    """A ``mercato`` command in a child process, logging to a file of its own."""

    def __init__(self, logs: Path, name: str, env: dict[str, str], *args: str) -> None:
        self.log_path = logs / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", *args],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.proc.poll() is None, f"exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"did not log {text!r}:\n{self.log()}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def eventually(check: Callable[[], object], timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _empty(database_url: str) -> None:
    runtime = Runtime.create(load_settings({"DATABASE_URL": database_url}))
    async with runtime.engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)}"))
    await runtime.close()
    redis = Redis.from_url(STRATEGIES_REDIS)
    await redis.flushdb()  # this folder's database
    await redis.aclose()


@pytest.fixture(scope="module")
def world(pg_database, tmp_path_factory):
    """An empty database with a superadmin and their API token (made with the CLI)."""
    asyncio.run(_empty(pg_database))
    made = mercato(
        "users", "create", "--email", "root@example.com", "--password", "x" * 16, "--role", "admin", "--superadmin",
        db_url=pg_database,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = mercato("users", "token", "create", "--email", "root@example.com", "--name", "t", db_url=pg_database)
    assert token.returncode == 0, token.stderr
    return {
        "url": pg_database,
        "token": token.stdout.strip(),
        "logs": tmp_path_factory.mktemp("heartbeats"),
    }


def serve(world, name: str, *args: str, **env: str) -> tuple[Proc, httpx.Client]:
    port = free_port()
    proc = Proc(world["logs"], name, {**FAST, "DATABASE_URL": world["url"], **env}, "serve", "--port", str(port), *args)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {world['token']}"})

    def up() -> bool:
        assert proc.proc.poll() is None, proc.log()
        try:
            return client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    eventually(up, timeout=60)  # a shared machine under load starts slowly
    return proc, client


def listed(client: httpx.Client) -> dict[int, dict]:
    """The processes the API lists, by pid."""
    response = client.get(f"{API}/processes")
    assert response.status_code == 200, response.text
    return {item["pid"]: item for item in response.json()["items"]}


def status(world, **env: str) -> dict:
    result = mercato("scheduler", "status", "--json", db_url=world["url"], **{**FAST, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_poller_of_mercato_serve_and_a_mercato_scheduler_start_report_and_say_when_they_stop(world):
    web, client = serve(world, "serve-embedded")
    poller = Proc(world["logs"], "poller", {**FAST, "DATABASE_URL": world["url"]}, "scheduler", "start")
    try:
        poller.wait_for("scheduler started")
        processes = eventually(lambda: (found := listed(client)) and poller.pid in found and found)
        assert (processes[web.pid]["kind"], processes[web.pid]["state"]) == ("embedded", "live")
        assert (processes[poller.pid]["kind"], processes[poller.pid]["state"]) == ("poller", "live")
        assert processes[web.pid]["host"] == socket.gethostname()

        seen = status(world)
        assert seen["healthy"] is True and seen["problems"] == []
        assert {p["pid"]: (p["kind"], p["state"]) for p in seen["processes"]} == {
            web.pid: ("embedded", "live"),
            poller.pid: ("poller", "live"),
        }
        assert seen["live"] == {"embedded": 1, "poller": 1, "async-scheduler": 0, "worker": 0}

        poller.stop()
        assert poller.proc.returncode == 0, poller.log()
        after = listed(client)[poller.pid]
        assert after["state"] == "stopped" and after["stoppedAt"]
        assert client.get(f"{API}/health").json()["healthy"] is True  # the web's own poller still fires
    finally:
        poller.stop()
        web.stop()
    seen = status(world)
    assert {p["pid"]: p["state"] for p in seen["processes"]} == {web.pid: "stopped", poller.pid: "stopped"}
    assert [p["code"] for p in seen["problems"]] == ["no-poller"]
    text = mercato("scheduler", "status", db_url=world["url"], **FAST).stdout
    assert "No scheduler is running" in text and "Run: mercato scheduler start." in text


def test_the_async_scheduler_and_worker_report_and_the_health_says_which_is_missing(world):
    env = {"QUEUE_STRATEGY": "async", "REDIS_URL": STRATEGIES_REDIS}
    process_env = {**FAST, "DATABASE_URL": world["url"], **env}
    web, client = serve(world, "serve-async", "--no-scheduler", **env)
    scheduler = Proc(world["logs"], "async-scheduler", process_env, "worker", "scheduler")
    worker = Proc(world["logs"], "worker", process_env, "worker", "start", "--workers", "1")
    try:
        scheduler.wait_for("scheduler started")
        worker.wait_for("Listening started")

        def both_live() -> dict:
            live = client.get(f"{API}/processes").json()["live"]
            return live if live["worker"] == 1 and live["async-scheduler"] == 1 else {}

        assert eventually(both_live) == {"embedded": 0, "poller": 0, "async-scheduler": 1, "worker": 1}
        processes = listed(client)
        assert processes[scheduler.pid]["kind"] == "async-scheduler"
        [child] = [p for p in processes.values() if p["kind"] == "worker"]
        assert child["pid"] != worker.pid  # the worker's child process executes the runs
        assert client.get(f"{API}/health").json()["problems"] == []
        assert status(world, **env)["healthy"] is True

        worker.stop()
        assert listed(client)[child["pid"]]["state"] == "stopped"
        problems = client.get(f"{API}/health").json()["problems"]
        assert [(p["code"], p["command"]) for p in problems] == [("no-worker", "mercato worker start")]

        scheduler.stop()
        assert listed(client)[scheduler.pid]["state"] == "stopped"
        codes = [p["code"] for p in client.get(f"{API}/health").json()["problems"]]
        assert codes == ["no-async-scheduler", "no-worker"]
        assert [p["code"] for p in status(world, **env)["problems"]] == codes
    finally:
        worker.stop()
        scheduler.stop()
        web.stop()
