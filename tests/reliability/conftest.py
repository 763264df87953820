"""Reliability and security suite: faults, hostile input, authorization.

Process tests use the session's PostgreSQL test database (made by this run, see tests/conftest.py) and Redis
databases 11-12, which belong to this folder (flushed here, used by nothing else). HTTP tests
use the in-process client and personas of ``tests/web`` and ``tests/api``, plus one more: an
admin of the same tenant but another organization.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import API, PERSONAS, acme_job, bearer, client, job, shared_app, tokens  # noqa: F401
from tests.web.conftest import PASSWORD, PASSWORD_HASH, csrf_from, login, sign_in  # noqa: F401
from tests.web.conftest import app_runtime as web_app_runtime  # noqa: F401

#: Redis databases of this folder: the chaos runs, and the other async process tests.
CHAOS_REDIS = "redis://127.0.0.1:6379/11"
FAULTS_REDIS = "redis://127.0.0.1:6379/12"
#: Same tenant as acme-eu's users, another organization.
OTHER_ORG = "owner@acme-us.test"


@pytest.fixture
def db_url(pg_url):
    """PostgreSQL only: production's backend, and the one whose connections can be cut."""
    return pg_url


@pytest.fixture
async def app_runtime(web_app_runtime):
    await web_app_runtime.users.create(OTHER_ORG, PASSWORD, "admin", tenant_id="acme", organization_id="acme-us",
                                       password_hash=PASSWORD_HASH)
    return web_app_runtime
