"""trash: who deleted a schedule, and an index of the deleted ones

A deleted schedule now records who deleted it (``deleted_by``), shown in the Deleted view.
Rows deleted before this migration take it from their audit trail (the actor of their last
``delete`` entry). The deleted schedules are listed newest deletion first and purged once older
than the trash retention: both read a partial index on ``deleted_at`` that holds the deleted
rows only (a handful beside the live ones), so live schedules' writes never touch it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

DELETED = sa.text("deleted_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_by', sa.String(length=254), nullable=True))
    op.create_index(
        'ix_scheduled_jobs_deleted',
        'scheduled_jobs',
        ['deleted_at', 'id'],
        unique=False,
        postgresql_where=DELETED,
        sqlite_where=DELETED,
    )
    op.execute(
        """
        UPDATE scheduled_jobs SET deleted_by = (
            SELECT a.actor FROM scheduler_audit_log a
            WHERE a.job_id = scheduled_jobs.id AND a.action = 'delete'
            ORDER BY a.created_at DESC, a.id DESC LIMIT 1
        )
        WHERE deleted_at IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_index('ix_scheduled_jobs_deleted', table_name='scheduled_jobs')
    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.drop_column('deleted_by')
