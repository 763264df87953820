"""Signing in safely: throttling, no session fixation, logout that ends the session on the server,
no secret in any log line, and no production start without a secret key."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from app.logging import JsonFormatter
from app.settings import DEV_SECRET_KEY, SettingsError, load_settings
from tests.support.http import API, LIST, csrf_from, login
from tests.support.personas import PASSWORD


async def _attempt(client, email: str, password: str):
    return await login(client, email, password)


async def test_failures_from_one_address_are_throttled_across_emails(client, app_runtime):
    """Guessing passwords for many accounts from one place is stopped as well as for one account."""
    for i in range(app_runtime.login_throttle.limits.address.failures):
        assert (await _attempt(client, f"nobody{i}@acme.test", "wrong password!")).status_code == 401
    blocked = await _attempt(client, "owner@acme.test", PASSWORD)
    assert blocked.status_code == 429 and "Too many failed sign-in attempts" in blocked.text
    assert "mercato_session" not in blocked.headers.get("set-cookie", "")


@pytest.mark.slow
def test_mercato_serve_believes_no_forwarded_address_by_default(pg_url):
    """The server as people run it: a client that writes X-Forwarded-For itself (here from
    127.0.0.1, the peer uvicorn used to trust by default) is still counted by its own address."""
    import httpx

    port = _free_port()
    env = {**os.environ, "DATABASE_URL": pg_url, "SCHEDULER_EMBEDDED": "false", "LOG_LEVEL": "warning"}
    env.pop("TRUSTED_PROXIES", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
            _wait_for(browser, server)
            statuses = []
            for i in range(31):
                headers = {"X-Forwarded-For": f"192.0.2.{i}"}
                token = csrf_from(browser.get("/login", headers=headers).text)
                statuses.append(
                    browser.post(
                        "/login",
                        headers=headers,
                        data={"email": f"nobody{i}@acme.test", "password": "wrong password!", "_csrf": token},
                    ).status_code
                )
        assert statuses == [401] * 30 + [429]
    finally:
        server.terminate()
        server.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(browser, server, timeout: float = 30.0) -> None:
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited early"
        try:
            if browser.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not start in time")


async def test_an_unknown_email_and_a_wrong_password_look_the_same(client):
    unknown = await _attempt(client, "nobody@acme.test", "wrong password!")
    wrong = await _attempt(client, "owner@acme.test", "wrong password!")
    assert unknown.status_code == wrong.status_code == 401
    message = "That email and password do not match."
    assert message in unknown.text and message in wrong.text


async def test_a_planted_session_cookie_is_never_adopted_at_login(client, app_runtime):
    client.cookies.set("mercato_session", "attacker-chose-this-value-0123456789")
    signed_in = await login(client, "owner@acme.test")
    key = signed_in.cookies.get("mercato_session")
    assert key and key != "attacker-chose-this-value-0123456789"
    assert await app_runtime.credentials.session_user("attacker-chose-this-value-0123456789") is None
    assert (await app_runtime.credentials.session_user(key)).email == "owner@acme.test"


async def test_logout_ends_the_session_on_the_server_for_pages_and_the_api(client, app_runtime):
    await login(client, "owner@acme.test")
    key = client.cookies.get("mercato_session")
    page = await client.get(LIST)
    assert (await client.get(f"{API}/jobs")).status_code == 200
    out = await client.post("/logout", data={"_csrf": csrf_from(page.text)})
    assert out.status_code in (302, 303) and 'mercato_session=""' in out.headers["set-cookie"].replace("=;", '="";')
    # A copy of the cookie kept by an attacker (or a shared computer) is worthless now.
    client.cookies.set("mercato_session", key)
    assert (await client.get(LIST)).status_code == 302
    assert (await client.get(f"{API}/jobs")).status_code == 401
    assert await app_runtime.credentials.session_user(key) is None


async def test_no_password_token_or_session_key_ever_reaches_a_log_line(client, app_runtime, caplog):
    """Every log record of a sign-in (good and bad), API calls (good, revoked, malformed) and a
    logout, formatted the way production writes them (JSON lines with every extra field)."""
    caplog.set_level(logging.DEBUG)
    wrong_password = "not-the-password-0xDEADBEEF"
    owner = await app_runtime.credentials.user_by_email("owner@acme.test")
    issued = await app_runtime.credentials.issue_token(owner.id, "log test")
    revoked = await app_runtime.credentials.issue_token(owner.id, "revoked")
    await app_runtime.credentials.revoke_token(revoked.token.id)

    await login(client, "owner@acme.test", wrong_password)
    await login(client, "owner@acme.test", PASSWORD)
    session_key = client.cookies.get("mercato_session")
    csrf_seed = client.cookies.get("mercato_csrf")
    await client.get(f"{API}/jobs")
    page = await client.get(LIST)
    csrf = csrf_from(page.text)
    await client.post(f"{API}/jobs", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    await client.post("/logout", data={"_csrf": csrf_from(page.text)})
    client.cookies.clear()
    for secret in (issued.secret, revoked.secret, issued.secret + "x"):
        await client.get(f"{API}/jobs", headers={"Authorization": f"Bearer {secret}"})
        await client.get(LIST, headers={"Authorization": f"Bearer {secret}"})
    await client.post(f"{API}/jobs", json={"name": 1}, headers={"Authorization": f"Bearer {issued.secret}"})

    formatter = JsonFormatter()
    written = "\n".join(formatter.format(record) for record in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    for secret in (PASSWORD, wrong_password, issued.secret, revoked.secret, session_key, csrf, csrf_seed):
        assert secret and secret not in written, f"a secret reached the logs: {secret[:6]}..."
    # Hashes of them stay out too (a token's hash is its database key).
    from app.domain.credentials import digest

    for secret in (issued.secret, session_key):
        assert digest(secret) not in written


@pytest.mark.slow
def test_production_refuses_to_start_without_a_real_secret_key(tmp_path):
    with pytest.raises(SettingsError, match="SECRET_KEY is required"):
        load_settings({"MERCATO_ENV": "production"})
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings({"MERCATO_ENV": "production", "SECRET_KEY": "short"})
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings({"MERCATO_ENV": "production", "SECRET_KEY": DEV_SECRET_KEY})
    assert load_settings({"MERCATO_ENV": "production", "SECRET_KEY": "k" * 40}).secret_key == "k" * 40

    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY",)}
    env.update(MERCATO_ENV="production", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3")
    for command in (["serve", "--port", "59999"], ["scheduler", "start"], ["db", "upgrade"]):
        started = subprocess.run(
            [sys.executable, "-m", "app.cli", *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert started.returncode != 0, command
        assert "SECRET_KEY is required when MERCATO_ENV=production" in started.stderr, (command, started.stderr[-500:])
        assert "Traceback" not in started.stderr
