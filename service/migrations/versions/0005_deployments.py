"""deployments and their versions: a stable name per tenant, and immutable versions of its
targets, fallbacks, sticky routing and promotion

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:29:06.925844
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deployments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_deployments_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments')),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_deployments_tenant_name')
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deployments_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('deployment_versions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('deployment_id', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.Column('fallbacks', sa.JSON(), nullable=False),
    sa.Column('sticky', sa.JSON(), nullable=True),
    sa.Column('promotion', sa.JSON(), nullable=True),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('rolled_back_to', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], name=op.f('fk_deployment_versions_deployment_id_deployments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_deployment_versions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment_versions')),
    sa.UniqueConstraint('deployment_id', 'version', name='uq_deployment_versions_deployment_version')
    )
    with op.batch_alter_table('deployment_versions', schema=None) as batch_op:
        batch_op.create_index('ix_deployment_versions_tenant', ['tenant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('deployment_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_deployment_versions_tenant')

    op.drop_table('deployment_versions')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_tenant_id'))

    op.drop_table('deployments')
