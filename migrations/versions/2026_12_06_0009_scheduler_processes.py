"""scheduler processes

Heartbeats of the processes that fire slots or run targets (pollers, taskiq schedulers and
workers): what the Processes page, ``mercato scheduler status``, the health banner and
``/metrics`` read. A few rows per process, pruned a day after a process was last heard from.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:00:00
"""

from alembic import op
import sqlalchemy as sa

import app.persistence.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scheduler_processes',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('strategy', sa.String(length=16), nullable=False),
        sa.Column('started_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('runs_in_flight', sa.Integer(), nullable=False),
        sa.Column('stopped_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduler_processes')),
    )
    with op.batch_alter_table('scheduler_processes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduler_processes_last_seen_at'), ['last_seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('scheduler_processes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduler_processes_last_seen_at'))
    op.drop_table('scheduler_processes')
