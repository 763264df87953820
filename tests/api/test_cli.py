"""The CLI edges of this issue: ``mercato scheduler export|import`` and ``mercato users token``,
run as real processes (on SQLite: the logic under them is shared and tested on both backends)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.api.test_transfer import document, new_item
from tests.support.cli import mercato
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.http import API

pytestmark = pytest.mark.slow  # every test runs the command line as a process


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url


async def test_export_then_import_with_dry_run_then_for_real(runtime, tmp_path, db_url):
    await runtime.scheduler.create(job_definition(DAILY_SALES_REPORT))
    exported_cli = mercato("scheduler", "export", db_url=db_url)
    assert exported_cli.returncode == 0, exported_cli.stderr
    doc = yaml.safe_load(exported_cli.stdout)
    doc["schedules"][0]["scheduleValue"] = "0 10 * * *"
    doc["schedules"].append(new_item())
    path = tmp_path / "schedules.yaml"
    path.write_text(yaml.safe_dump(doc))

    dry = mercato("scheduler", "import", str(path), "--dry-run", db_url=db_url)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "update  reports:daily:acme-eu",
        "create  rates:acme-eu",
        "dry run, nothing written: would create 1, update 1; 0 unchanged",
    ]
    assert (await runtime.scheduler.get("reports:daily:acme-eu")).schedule_value == "0 9 * * *"

    real = mercato("scheduler", "import", str(path), db_url=db_url)
    assert real.returncode == 0 and real.stdout.splitlines()[-1] == "created 1, updated 1; 0 unchanged"
    assert (await runtime.scheduler.get("reports:daily:acme-eu")).schedule_value == "0 10 * * *"
    again = mercato("scheduler", "import", str(path), db_url=db_url)
    assert again.stdout.splitlines()[-1] == "created 0, updated 0; 2 unchanged"


async def test_import_of_a_bad_file_changes_nothing_and_exits_1(runtime, tmp_path, db_url):
    path = tmp_path / "bad.yaml"
    path.write_bytes(document(new_item(), new_item(id="broken", timezone="Mars/Base")))
    result = mercato("scheduler", "import", str(path), db_url=db_url)
    assert result.returncode == 1
    assert "schedules[1].timezone: unknown timezone 'Mars/Base'" in result.stderr
    assert "nothing imported: 1 error" in result.stderr and "Traceback" not in result.stderr
    assert not await runtime.scheduler.exists("rates:acme-eu")


async def test_token_create_list_and_revoke(client, app_runtime, db_url):
    created = mercato(
        "users", "token", "create", "--email", "owner@acme.test", "--name", "deploy script", db_url=db_url
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()  # alone on stdout: TOKEN=$(mercato users token create ...)
    assert re.fullmatch(r"msk_[A-Za-z0-9_\-]{20,100}", secret)
    assert "not shown again" in created.stderr
    auth = {"Authorization": f"Bearer {secret}"}
    assert (await client.get(f"{API}/jobs", headers=auth)).status_code == 200

    listed = mercato("users", "token", "list", "--email", "owner@acme.test", db_url=db_url)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "PREFIX"]
    assert "deploy script" in row and secret[:12] in row and secret not in listed.stdout

    revoked = mercato("users", "token", "revoke", row.split()[0], db_url=db_url)
    assert revoked.returncode == 0 and "revoked token" in revoked.stdout
    assert (await client.get(f"{API}/jobs", headers=auth)).status_code == 401


def test_token_commands_explain_their_errors(db_url):
    ghost = mercato("users", "token", "create", "--email", "ghost@example.com", "--name", "x", db_url=db_url)
    assert ghost.returncode == 1 and "no user with email 'ghost@example.com'" in ghost.stderr
    unknown = mercato("users", "token", "revoke", "no-such-token", db_url=db_url)
    assert unknown.returncode == 1 and "no token with id 'no-such-token'" in unknown.stderr
    assert "Traceback" not in ghost.stderr + unknown.stderr


async def test_import_refuses_a_tenant_that_does_not_exist(runtime, tmp_path, db_url):
    path = tmp_path / "typo.yaml"
    path.write_bytes(document(new_item(tenantId="acmee", organizationId=None, scopeType="tenant")))
    result = mercato("scheduler", "import", str(path), db_url=db_url)
    assert result.returncode == 1 and "schedules[0].tenantId: there is no tenant 'acmee'" in result.stderr
    assert not await runtime.scheduler.exists("rates:acme-eu")


async def test_import_of_a_file_over_the_limit_says_so_in_one_line(runtime, tmp_path, db_url):
    path = tmp_path / "big.yaml"
    path.write_bytes(document(*(new_item(id=f"rates:{i}") for i in range(10))))
    assert path.stat().st_size > 1024
    result = mercato("scheduler", "import", str(path), db_url=db_url, SCHEDULER_MAX_IMPORT_BYTES="1024")
    assert result.returncode == 1
    assert result.stderr == (
        "nothing imported: the file is larger than the import limit of 1 KiB (SCHEDULER_MAX_IMPORT_BYTES=1024)\n"
    )
    assert not await runtime.scheduler.exists("rates:0")
