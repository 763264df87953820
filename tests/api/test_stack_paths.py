"""A failed run's stack shows no absolute path of the server to anyone who may see the run
(view-only users included): the product's files relative to its installation root, installed
packages relative to site-packages, Python's own files relative to its library."""

from __future__ import annotations

import re
import sys
import sysconfig

import sqlalchemy as sa

from app.persistence.models import ScheduledJobRun
from app.settings import PROJECT_ROOT
from app.strategies.local import LocalScheduler
from tests.support.factories import DAILY_SALES_REPORT, job_definition
from tests.support.firing import fire
from tests.support.http import API, LIST, as_user

VIEWER = "viewer@acme.test"
SERVER_PATHS = {str(PROJECT_ROOT), sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"]}
ABSOLUTE_FRAME = re.compile(r'File "/')


def assert_no_server_path(text: str, where: str) -> None:
    assert not ABSOLUTE_FRAME.search(text), f"an absolute path in the stack on {where}"
    for path in SERVER_PATHS:
        assert path not in text, f"{path} shown on {where}"


async def failed_run(runtime):
    job = await runtime.scheduler.create(
        job_definition(DAILY_SALES_REPORT, target_command="demo.echo", target_payload={"fail": "boom"})
    )
    await runtime.scheduler.trigger(job.id)
    await fire(LocalScheduler(runtime))
    async with runtime.sessions() as session:
        run = await session.scalar(sa.select(ScheduledJobRun).where(ScheduledJobRun.job_id == job.id))
    assert run.status == "failed"
    return job, run


async def test_it_records_a_failed_runs_stack_without_the_servers_paths(app_runtime):
    _, run = await failed_run(app_runtime)
    assert_no_server_path(run.error_stack, "the stored run")
    assert 'File "app/targets/builtin.py"' in run.error_stack  # the product's own file, relative
    assert 'File "app/domain/starting.py"' in run.error_stack
    assert "RuntimeError: boom" in run.error_stack


async def test_it_shows_no_server_path_on_the_api_or_the_run_page(client, app_runtime, bearer):
    job, run = await failed_run(app_runtime)
    # A stack recorded before this rule (absolute paths) is shown without them too.
    old = run.error_stack.replace('File "app/', f'File "{PROJECT_ROOT}/app/')
    old += f'  File "{sysconfig.get_paths()["purelib"]}/sqlalchemy/engine/base.py", line 1, in execute\n'
    async with app_runtime.sessions.begin() as session:
        await session.execute(sa.update(ScheduledJobRun).where(ScheduledJobRun.id == run.id).values(error_stack=old))
    shown = (await client.get(f"{API}/runs/{run.id}", headers=bearer(VIEWER))).json()["errorStack"]
    assert_no_server_path(shown, "the API")
    assert 'File "site-packages/sqlalchemy/engine/base.py"' in shown
    await as_user(client, app_runtime, VIEWER)
    page = await client.get(f"{LIST}/{job.id}/runs/{run.id}")
    assert page.status_code in (200, 286) and "RuntimeError: boom" in page.text
    assert_no_server_path(page.text, "the run page")
