"""``mercato scheduler runs``: runs across schedules from the command line, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.support.cli import mercato
from tests.support.runs import world_with_runs

pytestmark = pytest.mark.slow  # the command line as a process


@pytest.fixture
async def world(runtime):
    # The command reads the real clock: the runs are placed around it.
    return await world_with_runs(runtime, datetime.now(UTC))


def test_failed_in_the_last_hour_across_every_schedule_and_scope(db_url, world):
    result = mercato("scheduler", "runs", "--status", "failed", "--since", "1h", db_url=db_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "7 failed"  # the counts of the hour
    assert lines[1].split() == ["CREATED", "STATUS", "TRIGGER", "SCHEDULE", "RUN", "ERROR"]
    rows = lines[2:]
    assert len(rows) == 7 and all(" failed " in row for row in rows)
    assert world["acme_eu"][0] in rows[0] and "ConnectionError: acme_eu supplier down" in rows[0]
    assert any("globex:gone (deleted)" in row for row in rows)


def test_json_with_filters(db_url, world):
    result = mercato("scheduler", "runs", "--job", "acme-eu:export", "--limit", "2", "--json", db_url=db_url)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [item["id"] for item in data["items"]] == world["acme_eu"][:2]
    assert data["items"][0] | {"createdAt": None, "scheduledFor": None} == {
        "id": world["acme_eu"][0],
        "jobId": "acme-eu:export",
        "jobName": "Nightly export",
        "jobDeleted": False,
        "tenantId": "acme",
        "organizationId": "acme-eu",
        "status": "failed",
        "trigger": "scheduled",
        "scheduledFor": None,
        "createdAt": None,
        "durationMs": None,
        "errorMessage": "ConnectionError: acme_eu supplier down",
    }
    assert {c["status"]: c["count"] for c in data["counts"] if c["count"]} == {"failed": 1, "succeeded": 2}
    manual = json.loads(
        mercato("scheduler", "runs", "--trigger", "manual", "--tenant", "globex", "--json", db_url=db_url).stdout
    )
    assert {item["jobId"] for item in manual["items"]} == {"globex:export", "globex:gone"}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--status", "exploded"], "Invalid value for '--status'"),
        (["--since", "yesterday"], "Invalid value for '--since': must be an ISO 8601 instant"),
        (["--since", "2026-05-01T10:00:00"], "give a timezone offset"),
        (["--since", "500d"], "goes back at most 366 days"),
        (["--since", "1h", "--until", "2h"], "Invalid value for '--until': must be after --since"),
        (["--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_bad_arguments_are_one_clear_line(sqlite_url, args, message):
    result = mercato("scheduler", "runs", *args, db_url=sqlite_url)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
