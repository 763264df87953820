"""The ``mercato`` command line, run as a real process against SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from app.runtime import Runtime
from app.settings import load_settings
from tests.support.cli import mercato

pytestmark = pytest.mark.slow  # every test runs the command line as a process


def test_help_everywhere():
    for args in (
        [],
        ["scheduler"],
        ["scheduler", "preview"],
        ["users", "create"],
        ["users", "disable"],
        ["db"],
        ["serve"],
    ):
        result = mercato(*args, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage: mercato" in result.stdout


def test_db_upgrade_builds_a_fresh_sqlite_database(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    result = mercato("db", "upgrade", db_url=url)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert mercato("scheduler", "status", "--json", db_url=url).returncode == 0


def test_users_create_and_its_errors(db_url):
    ok = mercato(
        "users",
        "create",
        "--email",
        "Ops@Example.com",
        "--password",
        "correct horse battery",
        "--role",
        "admin",
        "--tenant",
        "acme",
        "--org",
        "acme-eu",
        db_url=db_url,
    )
    assert ok.returncode == 0, ok.stderr
    assert "created user ops@example.com (admin)" in ok.stdout
    again = mercato(
        "users",
        "create",
        "--email",
        "ops@example.com",
        "--password",
        "correct horse battery",
        "--role",
        "admin",
        db_url=db_url,
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    bad = mercato("users", "create", "--email", "nope", "--password", "short", "--role", "admin", db_url=db_url)
    assert bad.returncode == 1
    assert "email: enter an email address" in bad.stderr and "password: password must be at least 10" in bad.stderr
    assert "Traceback" not in bad.stderr
    role = mercato("users", "create", "--email", "a@b.co", "--password", "x" * 12, "--role", "boss", db_url=db_url)
    assert role.returncode == 2 and "Invalid value for '--role'" in role.stderr


async def test_users_disable_ends_their_sessions_and_enable_lets_them_sign_in_again(db_url):
    assert (
        mercato(
            "users",
            "create",
            "--email",
            "ops@example.com",
            "--password",
            "correct horse battery",
            "--role",
            "admin",
            db_url=db_url,
        ).returncode
        == 0
    )
    runtime = Runtime.create(load_settings({"DATABASE_URL": db_url}))
    try:
        user = await runtime.credentials.user_by_email("ops@example.com")
        session_key = await runtime.credentials.open_session(user.id)
        token = (await runtime.credentials.issue_token(user.id, "deploy")).secret

        disabled = mercato("users", "disable", "--email", "OPS@example.com", db_url=db_url)
        assert disabled.returncode == 0, disabled.stderr
        assert "disabled ops@example.com; signed out everywhere" in disabled.stdout
        assert "1 API token refused until enabled again" in disabled.stdout
        assert await runtime.credentials.session_user(session_key) is None
        assert await runtime.credentials.token_user(token) is None
        assert await runtime.users.authenticate("ops@example.com", "correct horse battery") is None

        enabled = mercato("users", "enable", "--email", "ops@example.com", db_url=db_url)
        assert enabled.returncode == 0 and "enabled ops@example.com" in enabled.stdout
        assert await runtime.credentials.session_user(session_key) is None  # ended for good
        assert (await runtime.credentials.token_user(token)).email == "ops@example.com"
        assert await runtime.users.authenticate("ops@example.com", "correct horse battery") is not None
    finally:
        await runtime.close()
    unknown = mercato("users", "disable", "--email", "nobody@example.com", db_url=db_url)
    assert unknown.returncode == 1 and "no user with email 'nobody@example.com'" in unknown.stderr


async def test_scheduler_list_and_status(db_url):
    runtime = Runtime.create(load_settings({"DATABASE_URL": db_url}))
    try:
        await runtime.users.ensure_scope("acme")
        await runtime.scheduler.register(
            {
                "id": "reports:daily:acme",
                "name": "Daily report",
                "scope_type": "tenant",
                "tenant_id": "acme",
                "schedule_type": "cron",
                "schedule_value": "0 6 * * *",
                "target_type": "command",
                "target_command": "reports.sales-summary",
                "source_module": "reports",
            }
        )
        await runtime.scheduler.register(
            {
                "id": "core:ping",
                "name": "Ping",
                "schedule_type": "interval",
                "schedule_value": "15m",
                "target_type": "command",
                "target_command": "demo.echo",
            }
        )
        await runtime.scheduler.disable("core:ping", note="noisy")
    finally:
        await runtime.close()

    table = mercato("scheduler", "list", db_url=db_url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TYPE", "SCHEDULE", "STATUS", "NEXT", "RUN"]
    assert any(line.startswith("reports:daily:acme") and "0 6 * * *" in line for line in lines)

    only_acme = json.loads(mercato("scheduler", "list", "--tenant", "acme", "--json", db_url=db_url).stdout)
    assert [j["id"] for j in only_acme] == ["reports:daily:acme"]
    disabled = json.loads(mercato("scheduler", "list", "--enabled", "false", "--json", db_url=db_url).stdout)
    assert [j["id"] for j in disabled] == ["core:ping"]

    status = json.loads(mercato("scheduler", "status", "--json", db_url=db_url).stdout)
    counts = {key: status[key] for key in ("strategy", "pollIntervalMs", "total", "enabled", "dueNow")}
    assert counts == {"strategy": "local", "pollIntervalMs": 30000, "total": 2, "enabled": 1, "dueNow": 0}
    # No poller has ever run on this database: nothing fires, and the status says what to run.
    assert (status["healthy"], status["processes"], status["runsInFlight"]) == (False, [], 0)
    assert [(p["code"], p["command"]) for p in status["problems"]] == [("no-poller", "mercato scheduler start")]


def test_preview_prints_description_and_slots_with_offsets():
    result = mercato(
        "scheduler",
        "preview",
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-03-28T12:00:00+00:00",
        "--count",
        "2",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "02:30" in lines[0]
    # Spring forward: 02:30 does not exist on 29 March, so it fires at 03:00 local.
    assert lines[1:] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_preview_json_and_interval():
    result = mercato("scheduler", "preview", "1h30m", "--after", "2026-01-01T00:00:00Z", "--count", "1", "--json")
    data = json.loads(result.stdout)
    assert data["type"] == "interval" and len(data["slots"]) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["61 * * * *"], "schedule value: minute field: 61 is out of range 0-59"),
        (["* * * * *", "--tz", "Europe/Berln"], "timezone: unknown timezone 'Europe/Berln'"),
        (["* * * * *", "--after", "yesterday"], "--after must be an ISO-8601 date and time"),
        (
            ["10s", "--tz", "Pacific/Kiritimati", "--after", "9999-12-31T23:59:59"],
            "--after must be between 1970-01-01 and 9000-12-31 (UTC), not '9999-12-31T23:59:59'",
        ),
        (["* * * * *", "--after", "0001-01-01T00:00:00+14:00"], "--after must be between 1970-01-01 and 9000-12-31"),
        (["5s", "--type", "interval"], "interval must be at least 10s"),
    ],
)
def test_preview_errors_are_one_line(args, message):
    result = mercato("scheduler", "preview", *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
