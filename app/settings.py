"""One typed settings object, built from the environment.

A bad value stops the program at start with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'mercato.sqlite3'}"
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"
#: The largest SCHEDULER_MAX_IMPORT_BYTES accepted: also the import route's hard body limit.
MAX_IMPORT_BYTES_LIMIT = 64 * 1024 * 1024


class SettingsError(Exception):
    """A setting from the environment is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    #: SQLAlchemy async URL: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``.
    database_url: str = DEFAULT_DATABASE_URL
    #: ``local`` (poller in the app process) or ``async`` (taskiq + Redis).
    queue_strategy: str = "local"
    #: Longest the local poller sleeps when nothing is due sooner.
    scheduler_poll_interval_ms: int = 30_000
    #: Redis for the async strategy's schedule source.
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Redis for the taskiq broker (defaults to ``redis_url``).
    queue_redis_url: str = ""
    #: Signs session cookies. Required when ``environment`` is ``production``.
    secret_key: str = DEV_SECRET_KEY
    #: Run history older than this many days is deleted by the cleanup job.
    scheduler_history_retention_days: int = 7
    #: Deleted schedules older than this many days are removed for good (with their runs and
    #: audit entries) by the same cleanup.
    scheduler_trash_retention_days: int = 30
    #: Shortest interval a schedule may have.
    scheduler_min_interval_seconds: int = 10
    #: Largest JSON payload a schedule may carry, in bytes.
    scheduler_max_payload_bytes: int = 64 * 1024
    #: Largest schedules file an import takes, in bytes (API and CLI); a larger one is refused
    #: before it is parsed.
    scheduler_max_import_bytes: int = 2 * 1024 * 1024
    #: ``development`` or ``production``; production refuses the development secret key.
    environment: str = "development"
    #: Run the local poller inside ``mercato serve``.
    embedded_scheduler: bool = True
    #: How many due slots one claim transaction takes.
    scheduler_claim_batch_size: int = 1000
    #: Local strategy: how many runs one scheduler process executes at once; the rest wait,
    #: queued, and start as runs finish (started in batches: a burst is not one run at a time).
    scheduler_concurrency: int = 200
    #: PostgreSQL connections each process keeps (as many more at peaks); size it so that every
    #: process of a deployment fits in the server's max_connections.
    database_pool_size: int = 10
    #: Async strategy: the scheduler process re-syncs Redis from the database this often (heals a FLUSHALL).
    scheduler_reconcile_interval_seconds: int = 30
    #: Async strategy: a message a worker took but never acknowledged (the worker died) goes to
    #: another worker after this long. A run that is already running is never started twice.
    worker_redelivery_seconds: int = 60
    #: Addresses and networks of reverse proxies whose ``X-Forwarded-For`` and
    #: ``X-Forwarded-Proto`` are believed (the client's address for login throttling, https for
    #: secure cookies). Empty: no proxy is trusted, the connecting address is the client's.
    trusted_proxies: tuple[str, ...] = ()
    #: How often each scheduler, poller and worker process writes its heartbeat row; a process
    #: not heard from for three of these is taken for gone.
    scheduler_heartbeat_seconds: int = 10
    #: A due slot (or a queued run whose time has come) waiting longer than this to be claimed
    #: (or started) makes the health banner say that nothing is keeping up.
    scheduler_overdue_seconds: int = 120
    #: Lines a run's log keeps (``ctx.log``); past them one marker line says the rest was
    #: dropped. 0 keeps none: nothing is captured.
    scheduler_run_log_max_lines: int = 1000
    #: Characters a run's log line keeps (a longer one is cut, saying so).
    scheduler_run_log_max_line_length: int = 2000
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def broker_redis_url(self) -> str:
        return self.queue_redis_url or self.redis_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise SettingsError(f"{name} must be {bound}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {env.get(name)!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip()
    if not value.startswith(schemes):
        raise SettingsError(f"{name} must start with one of {', '.join(schemes)}, got {value!r}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks (``10.0.0.0/8``), each checked."""
    items = []
    for item in (item.strip() for item in (env.get(name) or "").split(",")):
        try:
            # Normalized (10.1.2.3/8 -> 10.0.0.0/8) so that every reader parses them alike.
            items.append(str(ipaddress.ip_network(item, strict=False) if "/" in item else ipaddress.ip_address(item)))
        except ValueError:
            if item:
                raise SettingsError(
                    f"{name} must be comma-separated IP addresses or networks like 10.0.0.0/8, got {item!r}"
                ) from None
    return tuple(items)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (the process environment by default)."""
    env = os.environ if env is None else env
    database_url = _url(
        env,
        "DATABASE_URL",
        DEFAULT_DATABASE_URL,
        ("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql://", "postgres://"),
    )
    # Accept the plain URLs people copy from their hosting provider.
    for plain in ("postgresql://", "postgres://"):
        if database_url.startswith(plain):
            database_url = "postgresql+asyncpg://" + database_url[len(plain) :]
    environment = _choice(env, "MERCATO_ENV", "development", ("development", "production"))
    secret_key = (env.get("SECRET_KEY") or "").strip()
    if not secret_key:
        if environment == "production":
            raise SettingsError("SECRET_KEY is required when MERCATO_ENV=production")
        secret_key = DEV_SECRET_KEY
    elif len(secret_key) < 32:
        raise SettingsError("SECRET_KEY must be at least 32 characters long")
    elif secret_key == DEV_SECRET_KEY and environment == "production":
        raise SettingsError("SECRET_KEY must not be the development key when MERCATO_ENV=production")
    return Settings(
        database_url=database_url,
        queue_strategy=_choice(env, "QUEUE_STRATEGY", "local", ("local", "async")),
        scheduler_poll_interval_ms=_int(env, "SCHEDULER_POLL_INTERVAL_MS", 30_000, minimum=50, maximum=3_600_000),
        redis_url=_url(env, "REDIS_URL", "redis://127.0.0.1:6379/0", ("redis://", "rediss://", "unix://")),
        queue_redis_url=_url(env, "QUEUE_REDIS_URL", "redis://", ("redis://", "rediss://", "unix://"))
        if env.get("QUEUE_REDIS_URL")
        else "",
        secret_key=secret_key,
        scheduler_history_retention_days=_int(env, "SCHEDULER_HISTORY_RETENTION_DAYS", 7, minimum=1, maximum=3650),
        scheduler_trash_retention_days=_int(env, "SCHEDULER_TRASH_RETENTION_DAYS", 30, minimum=1, maximum=3650),
        scheduler_min_interval_seconds=_int(env, "SCHEDULER_MIN_INTERVAL_SECONDS", 10, minimum=1, maximum=86_400),
        scheduler_max_payload_bytes=_int(
            env, "SCHEDULER_MAX_PAYLOAD_BYTES", 64 * 1024, minimum=256, maximum=16 * 1024 * 1024
        ),
        scheduler_max_import_bytes=_int(
            env, "SCHEDULER_MAX_IMPORT_BYTES", 2 * 1024 * 1024, minimum=1024, maximum=MAX_IMPORT_BYTES_LIMIT
        ),
        environment=environment,
        embedded_scheduler=_bool(env, "SCHEDULER_EMBEDDED", True),
        scheduler_claim_batch_size=_int(env, "SCHEDULER_CLAIM_BATCH_SIZE", 1000, minimum=1, maximum=10_000),
        scheduler_concurrency=_int(env, "SCHEDULER_CONCURRENCY", 200, minimum=1, maximum=10_000),
        database_pool_size=_int(env, "DATABASE_POOL_SIZE", 10, minimum=1, maximum=100),
        scheduler_reconcile_interval_seconds=_int(
            env, "SCHEDULER_RECONCILE_INTERVAL_SECONDS", 30, minimum=1, maximum=86_400
        ),
        worker_redelivery_seconds=_int(env, "WORKER_REDELIVERY_SECONDS", 60, minimum=1, maximum=86_400),
        trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
        scheduler_heartbeat_seconds=_int(env, "SCHEDULER_HEARTBEAT_SECONDS", 10, minimum=1, maximum=3600),
        scheduler_overdue_seconds=_int(env, "SCHEDULER_OVERDUE_SECONDS", 120, minimum=10, maximum=86_400),
        scheduler_run_log_max_lines=_int(env, "SCHEDULER_RUN_LOG_MAX_LINES", 1000, minimum=0, maximum=100_000),
        scheduler_run_log_max_line_length=_int(
            env, "SCHEDULER_RUN_LOG_MAX_LINE_LENGTH", 2000, minimum=80, maximum=100_000
        ),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def random_secret() -> str:
    return secrets.token_urlsafe(48)
