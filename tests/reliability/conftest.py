"""Reliability and security suite: faults, hostile input, authorization.

Process tests use the session's PostgreSQL test database (made by this run, see
tests/support/databases.py) and Redis databases 11-12, which belong to this folder (see
tests/support/redis_databases.py). HTTP tests use the shared app and the personas of
tests/support, plus one more: an admin of the same tenant but another organization (``OTHER_ORG``).
"""

from __future__ import annotations

import pytest

from tests.support.personas import seed_other_org


@pytest.fixture
def db_url(pg_url):
    """PostgreSQL only: production's backend, and the one whose connections can be cut."""
    return pg_url


@pytest.fixture
async def app_runtime(app_runtime):
    await seed_other_org(app_runtime)
    return app_runtime


@pytest.fixture
def client(shared_app_client):
    return shared_app_client
