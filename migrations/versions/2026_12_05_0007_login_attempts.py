"""login attempts

Failed sign-ins, so that the login throttle is shared by every web process (it was kept in
each process's memory) and survives a restart. Rows older than the longest limit's window are
deleted as new failures are written, so the table holds at most the last hour of failures.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00
"""

from alembic import op
import sqlalchemy as sa

import app.persistence.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'login_attempts',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('email_hash', sa.String(length=64), nullable=False),
        sa.Column('failed_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts')),
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_address', ['address', 'failed_at'], unique=False)
        batch_op.create_index('ix_login_attempts_email', ['email_hash', 'failed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_attempts_failed_at'), ['failed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_attempts_failed_at'))
        batch_op.drop_index('ix_login_attempts_email')
        batch_op.drop_index('ix_login_attempts_address')
    op.drop_table('login_attempts')
