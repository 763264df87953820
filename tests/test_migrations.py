"""The migrations are the schema: they must agree with the models on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.persistence.database import create_engine
from app.persistence.models import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(request) -> str:
    # Resolved here, not inside the test: the databases are made with asyncio.run(), which
    # cannot run inside the test's event loop (unless an earlier test made them already).
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_database")


async def test_models_and_migrations_agree(migrated_url):
    engine = create_engine(migrated_url)

    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    await engine.dispose()
    assert differences == []
