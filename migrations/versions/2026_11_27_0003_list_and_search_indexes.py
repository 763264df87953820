"""list and search indexes

Indexes for the admin list at a million schedules and the run history at ten million runs:
trigram search (pg_trgm), the list's filters in one GIN index (btree_gin), sort indexes, and
a schedule's history by status. The extensions and the GIN indexes exist on PostgreSQL only;
SQLite gets plain indexes of the same names (unused by its searches, kept so that the models
and the migrations describe one schema).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:10:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

SEARCHED = ("name", "description", "id")
FILTERS = ["scope_type", "schedule_type", "target_type", "source_type", "is_enabled"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_jobs_name')
        batch_op.create_index('ix_scheduled_jobs_name', ['name', 'id'], unique=False)
        batch_op.create_index('ix_scheduled_jobs_next_run', ['next_run_at', 'id'], unique=False)
        for column in SEARCHED:
            batch_op.create_index(f'ix_scheduled_jobs_search_{column}', [column], unique=False,
                                  postgresql_using='gin', postgresql_ops={column: 'gin_trgm_ops'})
        batch_op.create_index('ix_scheduled_jobs_filters', FILTERS, unique=False, postgresql_using='gin')

    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_job_runs_history_status', ['job_id', 'status', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_job_runs_history_status')

    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_jobs_filters')
        for column in SEARCHED:
            batch_op.drop_index(f'ix_scheduled_jobs_search_{column}')
        batch_op.drop_index('ix_scheduled_jobs_next_run')
        batch_op.drop_index('ix_scheduled_jobs_name')
        batch_op.create_index('ix_scheduled_jobs_name', ['name'], unique=False)
