"""run cancel and payload

A run records the payload it ran with (manual runs; NULL for scheduled runs, which run with
their schedule's payload) and who asked to cancel it, and when. The new status ``cancelled``
needs no schema change (statuses are text).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import app.persistence.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'payload',
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column('cancel_requested_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column('cancelled_by', sa.String(length=254), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.drop_column('cancelled_by')
        batch_op.drop_column('cancel_requested_at')
        batch_op.drop_column('payload')
