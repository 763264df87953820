"""run logs

The lines a run's target logs through ``ctx.log``, kept with the run: one row per line, keyed
by (run, sequence number), so that a follower reads the lines after its cursor off the primary
key. Each line carries its run's tenant and organization. Deleted with their run by the
history cleanup.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00
"""

from alembic import op
import sqlalchemy as sa

import app.persistence.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scheduled_job_run_logs',
        sa.Column('run_id', sa.String(length=36), nullable=False),
        sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=True),
        sa.Column('organization_id', sa.String(length=64), nullable=True),
        sa.Column('logged_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('level', sa.String(length=16), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('run_id', 'seq', name=op.f('pk_scheduled_job_run_logs')),
    )


def downgrade() -> None:
    op.drop_table('scheduled_job_run_logs')
