"""Settings: defaults, and a bad value names its variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_setup():
    settings = load_settings({})
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.queue_strategy == "local"
    assert settings.scheduler_poll_interval_ms == 30_000
    assert settings.scheduler_history_retention_days == 7
    assert settings.scheduler_max_import_bytes == 2 * 1024 * 1024


def test_no_proxy_is_trusted_unless_listed():
    assert load_settings({}).trusted_proxies == ()
    listed = load_settings({"TRUSTED_PROXIES": " 10.1.2.3/8, 127.0.0.1 ,::1, fd00::/8, "})
    assert listed.trusted_proxies == ("10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8")


def test_plain_postgres_urls_get_the_async_driver():
    assert load_settings({"DATABASE_URL": "postgres://u@h/db"}).database_url == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"QUEUE_STRATEGY": "sometimes"}, "QUEUE_STRATEGY must be one of local, async"),
        ({"SCHEDULER_POLL_INTERVAL_MS": "fast"}, "SCHEDULER_POLL_INTERVAL_MS must be a whole number"),
        ({"SCHEDULER_POLL_INTERVAL_MS": "0"}, "SCHEDULER_POLL_INTERVAL_MS must be between 50 and 3600000"),
        ({"SCHEDULER_HISTORY_RETENTION_DAYS": "-3"}, "SCHEDULER_HISTORY_RETENTION_DAYS must be between"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must start with one of"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL must start with one of"),
        ({"SCHEDULER_MAX_IMPORT_BYTES": "100"}, "SCHEDULER_MAX_IMPORT_BYTES must be between 1024 and 67108864"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32 characters"),
        ({"MERCATO_ENV": "production"}, "SECRET_KEY is required when MERCATO_ENV=production"),
        (
            {"TRUSTED_PROXIES": "10.0.0.1, proxy.internal"},
            "TRUSTED_PROXIES must be comma-separated IP addresses or networks like 10.0.0.0/8, got 'proxy.internal'",
        ),
        ({"TRUSTED_PROXIES": "*"}, "TRUSTED_PROXIES must be comma-separated IP addresses"),
        ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES must be comma-separated IP addresses"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


@pytest.mark.slow
def test_a_bad_value_stops_the_cli_at_start_with_the_message():
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "scheduler", "status"],
        env={"QUEUE_STRATEGY": "redis", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "QUEUE_STRATEGY must be one of local, async" in result.stderr
    assert "Traceback" not in result.stderr
