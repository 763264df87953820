"""all runs indexes

The Runs page and ``GET /api/scheduler/runs`` list runs across schedules, newest first, by
status and within a tenant. Measured at ten million runs (``bench/runs_page.py``,
``docs/performance.md``): one status newest first and the counts by status need
``(status, created_at)``; a tenant's runs newest first need ``(tenant_id, created_at)``; a
tenant's runs of one status and its counts by status ``(tenant_id, status, created_at,
organization_id)``, which answers them from the index alone (a user of one organization sees
its runs and its tenant's: the organization is filtered in the index, not in the table).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 09:00:00
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_job_runs_status', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_scheduled_job_runs_tenant', ['tenant_id', 'created_at'], unique=False)
        batch_op.create_index(
            'ix_scheduled_job_runs_tenant_status', ['tenant_id', 'status', 'created_at', 'organization_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_job_runs_tenant_status')
        batch_op.drop_index('ix_scheduled_job_runs_tenant')
        batch_op.drop_index('ix_scheduled_job_runs_status')
