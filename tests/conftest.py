"""Fixtures for the whole suite, from ``tests/support``; folder conftests hold only their folder's overrides.

Each run makes its own PostgreSQL database (several people, a test run and a benchmark may share
one server) and drops only that one: see ``tests.support.databases``.
"""

pytest_plugins = [
    "tests.support.fixtures_db",
    "tests.support.fixtures_web",
    "tests.support.fixtures_api",
]
