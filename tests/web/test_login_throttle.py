"""Sign-in throttling: per address and email, with ceilings per email and per address, shared by
every web process through the database, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace

import httpx
import pytest
import sqlalchemy as sa

from app.persistence.models import LoginAttempt
from app.runtime import Runtime
from app.web.app import create_app
from tests.support.http import csrf_from, login
from tests.support.personas import PASSWORD

OWNER = "owner@acme.test"
ATTACKER = "203.0.113.66"
OWNER_HOME = "198.51.100.20"
PROXY = "10.0.0.2"


@pytest.fixture
async def client_from(app_runtime):
    """``await client_from(address)``: a browser connecting from ``address`` to the app (or to
    one built with ``settings``, or on ``runtime``: another process on the same database)."""
    apps = {}
    async with AsyncExitStack() as stack:

        async def make(address: str, *, settings=None, runtime=None):
            runtime = runtime or app_runtime
            settings = settings or runtime.settings
            if (settings, id(runtime)) not in apps:
                apps[settings, id(runtime)] = create_app(settings, run_scheduler=False, runtime=runtime)
            app = apps[settings, id(runtime)]
            app.state.runtime = runtime
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver.local")
            return await stack.enter_async_context(client)

        yield make


async def _fail(client, email: str = OWNER, **headers) -> int:
    page = await client.get("/login", headers=headers)
    response = await client.post(
        "/login",
        headers=headers,
        follow_redirects=False,
        data={"email": email, "password": "wrong password!", "_csrf": csrf_from(page.text)},
    )
    return response.status_code


async def _sign_in(client, email: str = OWNER, **headers) -> int:
    page = await client.get("/login", headers=headers)
    response = await client.post(
        "/login",
        headers=headers,
        follow_redirects=False,
        data={"email": email, "password": PASSWORD, "_csrf": csrf_from(page.text)},
    )
    return response.status_code


async def _rows(runtime) -> int:
    async with runtime.sessions() as session:
        return await session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt))


async def test_it_does_not_lock_the_owner_out_for_an_attackers_failures(client_from):
    attacker, owner = await client_from(ATTACKER), await client_from(OWNER_HOME)
    for _ in range(5):
        assert await _fail(attacker) == 401
    assert await _fail(attacker) == 429
    assert await _sign_in(owner) in (302, 303)


async def test_it_throttles_one_address_at_one_email_after_five_failures(client_from, app_runtime, clock):
    owner = await client_from(OWNER_HOME)
    for _ in range(5):
        assert await _fail(owner) == 401
    assert (blocked := await _sign_in(owner)) == 429, blocked
    # The wait is the one left before the oldest failure leaves the 15-minute window.
    assert await app_runtime.login_throttle.retry_after(OWNER_HOME, OWNER) == 15 * 60
    clock.advance(minutes=15, seconds=1)
    assert await _sign_in(owner) in (302, 303)


async def test_it_ignores_forwarded_for_from_an_untrusted_peer(client_from):
    attacker = await client_from(ATTACKER)
    for i in range(5):
        assert await _fail(attacker, **{"X-Forwarded-For": f"192.0.2.{i}"}) == 401
    assert await _fail(attacker, **{"X-Forwarded-For": "192.0.2.99"}) == 429


async def test_it_uses_forwarded_for_from_a_trusted_proxy(client_from, app_runtime):
    settings = replace(app_runtime.settings, trusted_proxies=("10.0.0.0/8",))
    proxy = await client_from(PROXY, settings=settings)
    for _ in range(5):
        assert await _fail(proxy, **{"X-Forwarded-For": ATTACKER}) == 401
    # The attacker cannot step aside by writing addresses of its own in front: the proxy
    # appends the address it saw, the rightmost one not a proxy is the client's.
    assert await _fail(proxy, **{"X-Forwarded-For": f"192.0.2.1, {ATTACKER}"}) == 429
    assert await _sign_in(proxy, **{"X-Forwarded-For": OWNER_HOME}) in (302, 303)


async def test_two_processes_on_one_database_share_the_counts(client_from, app_runtime):
    other_process = Runtime.create(app_runtime.settings, clock=app_runtime.clock)
    try:
        first, second = await client_from(ATTACKER), await client_from(ATTACKER, runtime=other_process)
        for client in (first, second, first, second, first):
            assert await _fail(client) == 401
        assert await _fail(second) == 429 and await _fail(first) == 429
    finally:
        await other_process.close()


async def test_it_locks_an_email_for_everyone_only_after_many_failures_from_anywhere(app_runtime):
    throttle = app_runtime.login_throttle
    ceiling = throttle.limits.email.failures
    assert ceiling >= 50
    for i in range(ceiling - 1):
        await throttle.failed(f"192.0.2.{i}", OWNER)
    assert await throttle.retry_after(OWNER_HOME, OWNER) == 0
    await throttle.failed("192.0.2.250", OWNER)
    assert await throttle.retry_after(OWNER_HOME, OWNER) > 0
    assert await throttle.retry_after(OWNER_HOME, "viewer@acme.test") == 0


async def test_it_stops_one_address_trying_many_emails(app_runtime):
    throttle = app_runtime.login_throttle
    for i in range(throttle.limits.address.failures):
        assert await throttle.retry_after(ATTACKER, f"user{i}@acme.test") == 0
        await throttle.failed(ATTACKER, f"user{i}@acme.test")
    assert await throttle.retry_after(ATTACKER, "someone.new@acme.test") > 0
    assert await throttle.retry_after(OWNER_HOME, "someone.new@acme.test") == 0


async def test_it_forgets_failures_once_they_no_longer_count(app_runtime, clock):
    """The state stays bounded: a failure older than the longest window is deleted."""
    throttle = app_runtime.login_throttle
    for i in range(40):
        await throttle.failed(f"192.0.2.{i}", f"user{i}@acme.test")
    assert await _rows(app_runtime) == 40
    clock.advance(hours=1, seconds=1)
    await throttle.failed(ATTACKER, OWNER)
    assert await _rows(app_runtime) == 1


async def test_a_sign_in_clears_only_its_own_failures(client_from, app_runtime):
    owner, attacker = await client_from(OWNER_HOME), await client_from(ATTACKER)
    for _ in range(3):
        assert await _fail(owner) == 401
        assert await _fail(attacker) == 401
    assert await _sign_in(owner) in (302, 303)
    assert await _rows(app_runtime) == 3  # the attacker's stay
    for _ in range(2):
        assert await _fail(attacker) == 401
    assert await _fail(attacker) == 429


async def test_a_hostile_address_or_email_is_no_error(client_from, app_runtime):
    settings = replace(app_runtime.settings, trusted_proxies=("10.0.0.0/8",))
    proxy = await client_from(PROXY, settings=settings)
    for forwarded in ("x" * 500, "", ",,,", "not an address, ::ffff:zzz", "[::1]:99999, 10.0.0.3"):
        assert await _fail(proxy, "ü" * 300 + "@x.test", **{"X-Forwarded-For": forwarded}) in (401, 429)
    anonymous = await client_from("")
    assert await _fail(anonymous) == 401
    assert (await login(anonymous, OWNER)).status_code in (302, 303)
