"""search indexes on lower(column)

The trigram indexes of 0003 were on the columns themselves. pg_trgm also serves "=", and with
stale statistics PostgreSQL chose the trigram index on id over the primary key for
"id = ANY(...)" (seconds instead of milliseconds). On lower(column) they serve the search
(lower(column) ILIKE '%text%') and nothing else. PostgreSQL only: SQLite cannot use an index
for a LIKE '%text%', so 0003's plain copies there go too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:40:00
"""

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

SEARCHED = ("name", "description", "id")


def upgrade() -> None:
    for column in SEARCHED:
        op.drop_index(f'ix_scheduled_jobs_search_{column}', table_name='scheduled_jobs')
    if op.get_bind().dialect.name == "postgresql":
        for column in SEARCHED:
            op.execute(f"CREATE INDEX ix_scheduled_jobs_search_{column} ON scheduled_jobs "
                       f"USING gin (lower({column}) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in SEARCHED:
            op.drop_index(f'ix_scheduled_jobs_search_{column}', table_name='scheduled_jobs')
    for column in SEARCHED:
        op.create_index(f'ix_scheduled_jobs_search_{column}', 'scheduled_jobs', [column], unique=False,
                        postgresql_using='gin', postgresql_ops={column: 'gin_trgm_ops'})
