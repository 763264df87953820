"""Real Chromium against a live server on PostgreSQL, with the local poller running.

Playwright's sync API refuses to run inside a running event loop, so these tests are plain
functions; the async setup (emptying and seeding the database) runs in a thread of its own.
The server is a subprocess (``python -m app.cli serve``), exactly what people run.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from app.settings import PROJECT_ROOT
from tests.browser.seed import seed

SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
ARTIFACTS = PROJECT_ROOT / "test-results" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    }


# pytest-playwright keeps Playwright for the whole session. While it lives, asyncio sees a running
# loop in this thread, and every async test after it would fail: here it lives for a module.
@pytest.fixture(scope="module")
def playwright(_pw_api_request_contexts):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(pw)
    yield pw
    pw.stop()


@pytest.fixture(scope="module")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="module")
def launch_browser(browser_type_launch_args, browser_type):
    return lambda **kwargs: browser_type.launch(**{**browser_type_launch_args, **kwargs})


@pytest.fixture(scope="module")
def browser(launch_browser):
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def browser_context_args(pytestconfig, _pw_artifacts_folder):
    args = {"viewport": {"width": 1440, "height": 900}, "locale": "en-GB"}
    if pytestconfig.getoption("--video") in ("on", "retain-on-failure"):
        args["record_video_dir"] = _pw_artifacts_folder.name
    return args


def _in_own_loop(make_coro):
    """Run a coroutine to completion in a fresh thread and loop (never the test session's loop)."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(make_coro())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(base_url: str, server: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{base_url}/login", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start in time")


@pytest.fixture(scope="module")
def live_server(pg_database, tmp_path_factory):
    """The app with its local poller on a free port, over a freshly seeded PostgreSQL database."""
    seeded = _in_own_loop(lambda: seed(pg_database))
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": pg_database,
        "QUEUE_STRATEGY": "local",
        "SCHEDULER_POLL_INTERVAL_MS": "250",
        "SCHEDULER_EMBEDDED": "true",
        "PYTHONUNBUFFERED": "1",
    }
    # The log goes to a file: an unread pipe fills up and would block the server mid-test.
    log = tmp_path_factory.mktemp("live_server") / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, server, log)
        yield {"url": base_url, **seeded}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def screenshot():
    """Save a full-page screenshot as a test artifact (test-results/screenshots/).

    With UPDATE_SCREENSHOTS=1 it goes to docs/screenshots/ instead, the committed copies that
    docs/ui.md shows. (Times on the pages differ on every run: writing the committed files
    on every test run would leave every working tree dirty.)
    """
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, *, full_page: bool = True) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="initial")
        return path

    return take
