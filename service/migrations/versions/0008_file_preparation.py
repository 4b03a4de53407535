"""file preparations: source data turned into fine-tuning files; each prepared file names its
source file and its preparation

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('file_preparations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('source_file_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('training_file_id', sa.String(length=40), nullable=True),
    sa.Column('validation_file_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_file_preparations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_preparations'))
    )
    with op.batch_alter_table('file_preparations', schema=None) as batch_op:
        batch_op.create_index('ix_file_preparations_tenant_created', ['tenant_id', 'created_at'], unique=False)

    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_file_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('preparation_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_column('preparation_id')
        batch_op.drop_column('source_file_id')

    with op.batch_alter_table('file_preparations', schema=None) as batch_op:
        batch_op.drop_index('ix_file_preparations_tenant_created')

    op.drop_table('file_preparations')
