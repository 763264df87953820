"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 07:46:17.421825
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import app.persistence.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('roles',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('features', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_roles'))
    )
    op.create_table('scheduled_job_runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('job_id', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=True),
    sa.Column('organization_id', sa.String(length=64), nullable=True),
    sa.Column('scheduled_for', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('triggered_by', sa.String(length=254), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('not_before', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('enqueued_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('error_stack', sa.Text(), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('queue_job_id', sa.String(length=100), nullable=True),
    sa.Column('lease_expires_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_job_runs'))
    )
    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_job_runs_active', ['status', 'not_before'], unique=False, postgresql_where=sa.text("status IN ('queued', 'running')"), sqlite_where=sa.text("status IN ('queued', 'running')"))
        batch_op.create_index('ix_scheduled_job_runs_created', ['created_at'], unique=False)
        batch_op.create_index('ix_scheduled_job_runs_history', ['job_id', 'created_at'], unique=False)
        batch_op.create_index('uq_scheduled_job_runs_slot', ['job_id', 'scheduled_for'], unique=True, postgresql_where=sa.text("trigger IN ('scheduled', 'catch_up')"), sqlite_where=sa.text("trigger IN ('scheduled', 'catch_up')"))

    op.create_table('scheduled_jobs',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('scope_type', sa.String(length=16), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=True),
    sa.Column('organization_id', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('schedule_type', sa.String(length=16), nullable=False),
    sa.Column('schedule_value', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('anchor_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('target_type', sa.String(length=16), nullable=False),
    sa.Column('target_queue', sa.String(length=200), nullable=True),
    sa.Column('target_command', sa.String(length=200), nullable=True),
    sa.Column('target_payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('require_feature', sa.String(length=200), nullable=True),
    sa.Column('is_enabled', sa.Boolean(), nullable=False),
    sa.Column('paused_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paused_by', sa.String(length=254), nullable=True),
    sa.Column('pause_note', sa.String(length=500), nullable=True),
    sa.Column('catch_up_policy', sa.String(length=16), nullable=False),
    sa.Column('catch_up_window_seconds', sa.Integer(), nullable=False),
    sa.Column('overlap_policy', sa.String(length=16), nullable=False),
    sa.Column('jitter_seconds', sa.Integer(), nullable=False),
    sa.Column('timeout_seconds', sa.Integer(), nullable=True),
    sa.Column('max_retries', sa.Integer(), nullable=False),
    sa.Column('retry_backoff_seconds', sa.Integer(), nullable=False),
    sa.Column('start_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('max_runs', sa.Integer(), nullable=True),
    sa.Column('run_count', sa.Integer(), nullable=False),
    sa.Column('next_run_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_run_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.String(length=16), nullable=True),
    sa.Column('source_type', sa.String(length=16), nullable=False),
    sa.Column('source_module', sa.String(length=100), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=True),
    sa.Column('updated_by', sa.String(length=254), nullable=True),
    sa.Column('created_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_jobs'))
    )
    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_jobs_due', ['next_run_at'], unique=False, postgresql_where=sa.text('is_enabled AND deleted_at IS NULL'), sqlite_where=sa.text('is_enabled AND deleted_at IS NULL'))
        batch_op.create_index('ix_scheduled_jobs_name', ['name'], unique=False)
        batch_op.create_index('ix_scheduled_jobs_scope', ['tenant_id', 'organization_id', 'name'], unique=False)
        batch_op.create_index('ix_scheduled_jobs_source', ['source_module'], unique=False)
        batch_op.create_index('ix_scheduled_jobs_updated', ['updated_at'], unique=False)

    op.create_table('scheduler_audit_log',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('job_id', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=True),
    sa.Column('organization_id', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('before', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('after', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduler_audit_log'))
    )
    with op.batch_alter_table('scheduler_audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_scheduler_audit_log_job', ['job_id', 'created_at'], unique=False)

    op.create_table('tenants',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('features', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants'))
    )
    op.create_table('organizations',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_organizations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations'))
    )
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organizations_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=True),
    sa.Column('organization_id', sa.String(length=64), nullable=True),
    sa.Column('is_superadmin', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_users_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role'], ['roles.name'], name=op.f('fk_users_role_roles')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_users_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', app.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)


    # The built-in roles. Feature ids are the original's.
    roles = sa.table("roles", sa.column("name", sa.String), sa.column("features", sa.JSON))
    op.bulk_insert(
        roles,
        [
            {"name": "admin", "features": ["scheduler.jobs.view", "scheduler.jobs.manage", "scheduler.jobs.trigger"]},
            {"name": "operator", "features": ["scheduler.jobs.view", "scheduler.jobs.trigger"]},
            {"name": "employee", "features": ["scheduler.jobs.view"]},
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_tenant_id'))

    op.drop_table('users')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organizations_tenant_id'))

    op.drop_table('organizations')
    op.drop_table('tenants')
    with op.batch_alter_table('scheduler_audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduler_audit_log_job')

    op.drop_table('scheduler_audit_log')
    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_jobs_updated')
        batch_op.drop_index('ix_scheduled_jobs_source')
        batch_op.drop_index('ix_scheduled_jobs_scope')
        batch_op.drop_index('ix_scheduled_jobs_name')
        batch_op.drop_index('ix_scheduled_jobs_due', postgresql_where=sa.text('is_enabled AND deleted_at IS NULL'), sqlite_where=sa.text('is_enabled AND deleted_at IS NULL'))

    op.drop_table('scheduled_jobs')
    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_scheduled_job_runs_slot', postgresql_where=sa.text("trigger IN ('scheduled', 'catch_up')"), sqlite_where=sa.text("trigger IN ('scheduled', 'catch_up')"))
        batch_op.drop_index('ix_scheduled_job_runs_history')
        batch_op.drop_index('ix_scheduled_job_runs_created')
        batch_op.drop_index('ix_scheduled_job_runs_active', postgresql_where=sa.text("status IN ('queued', 'running')"), sqlite_where=sa.text("status IN ('queued', 'running')"))

    op.drop_table('scheduled_job_runs')
    op.drop_table('roles')
