"""The migrations are the schema: they must agree with the models on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.persistence.database import create_engine
from app.persistence.models import Base


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_models_and_migrations_agree(request, backend):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_database")
    engine = create_engine(url)

    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    await engine.dispose()
    assert differences == []
