"""usage and limits: hourly usage counters per tenant, key, deployment, model and provider; per-minute
proxy limits set on tenants and API keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('usage_hours',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('deployment', sa.String(length=64), nullable=False),
    sa.Column('deployment_version', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('hour', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('errors', sa.BigInteger(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('latency_ms_total', sa.Float(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_usage_hours_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_hours')),
    sa.UniqueConstraint('tenant_id', 'key_id', 'deployment', 'deployment_version', 'model', 'provider', 'hour', name='uq_usage_hours_bucket')
    )
    with op.batch_alter_table('usage_hours', schema=None) as batch_op:
        batch_op.create_index('ix_usage_hours_tenant_hour', ['tenant_id', 'hour'], unique=False)

    op.create_table('rate_limits',
    sa.Column('owner_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('requests_per_minute', sa.Integer(), nullable=True),
    sa.Column('tokens_per_minute', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_rate_limits_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('owner_id', name=op.f('pk_rate_limits'))
    )
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limits_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limits_tenant_id'))

    op.drop_table('rate_limits')

    with op.batch_alter_table('usage_hours', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_hours_tenant_hour')

    op.drop_table('usage_hours')
