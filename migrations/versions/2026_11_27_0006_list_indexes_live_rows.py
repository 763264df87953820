"""list indexes on live rows

The schedule list always asks for schedules not deleted, and a deep page (page 4,000 by name:
offset 100,000) walked the name index and read each of the 100,000 rows from the table only to
check ``deleted_at``. The name and next-run indexes become partial (``WHERE deleted_at IS
NULL``), so a page's ids come from the index alone. The scope index also holds the id and the
scope type: everything the visibility condition of a tenant's or organization's user tests,
so their count and the ids of their page (by name) need no table rows either. No column the
firing path writes is added (``deleted_at`` is already in the due index's predicate), so its
updates stay HOT.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 14:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")
NEW = {
    "ix_scheduled_jobs_scope": ["tenant_id", "organization_id", "name", "id", "scope_type"],
    "ix_scheduled_jobs_name": ["name", "id"],
    "ix_scheduled_jobs_next_run": ["next_run_at", "id"],
}
OLD = {
    "ix_scheduled_jobs_scope": ["tenant_id", "organization_id", "name"],
    "ix_scheduled_jobs_name": ["name", "id"],
    "ix_scheduled_jobs_next_run": ["next_run_at", "id"],
}


def upgrade() -> None:
    for name, columns in NEW.items():
        op.drop_index(name, table_name="scheduled_jobs")
        op.create_index(name, "scheduled_jobs", columns, unique=False, postgresql_where=LIVE, sqlite_where=LIVE)


def downgrade() -> None:
    for name, columns in OLD.items():
        op.drop_index(name, table_name="scheduled_jobs")
        op.create_index(name, "scheduled_jobs", columns, unique=False)
