"""Operations endpoints: liveness, readiness and Prometheus metrics.

- ``/healthz``: the process answers (no database; for liveness probes).
- ``/readyz``: the database answers, and Redis too in the async strategy; 503 otherwise.
- ``/metrics``: Prometheus text, for superadmins only (send a superadmin's API token as
  ``Authorization: Bearer``): the numbers span every tenant.

None of them is in the OpenAPI document, and their errors are plain, not HTML or redirects:
a scraper or a probe reads them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

from app.domain import metrics
from app.domain.errors import Forbidden
from app.runtime import Runtime
from app.web.auth import NotAuthenticated, runtime_of

log = logging.getLogger("mercato.web")

#: A probe that waits longer than this calls the dependency down.
PROBE_TIMEOUT = 2.0


@get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[Any]:
    runtime = runtime_of(request)
    checks = {"database": await _probe(_ping_database(runtime))}
    if runtime.settings.queue_strategy == "async":
        checks["redis"] = await _probe(_ping_redis(runtime.settings.redis_url))
        if runtime.settings.broker_redis_url != runtime.settings.redis_url:
            checks["brokerRedis"] = await _probe(_ping_redis(runtime.settings.broker_redis_url))
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not ready", "strategy": runtime.settings.queue_strategy, "checks": checks}
    return Response(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})


async def _probe(check: Awaitable[None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, PROBE_TIMEOUT)
    except Exception as exc:  # any failure means "not ready"; the log keeps the details
        log.warning("readiness check failed: %s", exc, extra={"error": type(exc).__name__})
        error = "timed out" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
        return {"ok": False, "error": error}
    return {"ok": True, "latencyMs": round((time.perf_counter() - started) * 1000, 1)}


async def _ping_database(runtime: Runtime) -> None:
    async with runtime.engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))


async def _ping_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT)
    try:
        await client.ping()
    finally:
        await client.aclose()  # type: ignore[attr-defined]  # types-redis predates Redis.aclose (redis 5)


def _plain_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    status = 401 if isinstance(exc, NotAuthenticated) else 403
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return Response(f"{exc}\n", status_code=status, media_type="text/plain", headers=headers)


@get(
    "/metrics",
    include_in_schema=False,
    exception_handlers={NotAuthenticated: _plain_error, Forbidden: _plain_error},
)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[Any]:
    actor = request.state.actor
    if actor is None:
        raise NotAuthenticated("send a superadmin's API token: 'Authorization: Bearer <token>'")
    if not actor.is_superadmin:
        raise Forbidden("metrics cover every tenant: only superadmins may read them")
    families = await metrics.collect(runtime_of(request))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(registry), media_type=content_type, headers={"Cache-Control": "no-store"})


class _Snapshot:
    """A prometheus_client collector over families already read (collect() must be sync)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


routes = [healthz, readyz, metrics_endpoint]
