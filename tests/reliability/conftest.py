"""Reliability and security suite: faults, hostile input, authorization.

Process tests use the session's PostgreSQL test database (``TEST_PG_DATABASE``) and Redis
databases 11-12, which belong to this folder (flushed here, used by nothing else).
"""

from __future__ import annotations

import pytest

#: Redis databases of this folder: the chaos runs, and the other async process tests.
CHAOS_REDIS = "redis://127.0.0.1:6379/11"
FAULTS_REDIS = "redis://127.0.0.1:6379/12"


@pytest.fixture
def db_url(pg_url):
    """PostgreSQL only: production's backend, and the one whose connections can be cut."""
    return pg_url
