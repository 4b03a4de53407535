"""tenants' own provider credentials (the key encrypted), which credentials each job was created
with, and room in a file copy's provider column for the account it was uploaded to

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'tenant_provider_credentials',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=40), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('api_key_encrypted', sa.Text(), nullable=False),
        sa.Column('api_key_hint', sa.String(length=8), nullable=False),
        sa.Column('organization', sa.String(length=128), nullable=True),
        sa.Column('project', sa.String(length=128), nullable=True),
        sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['tenant_id'],
            ['tenants.id'],
            name=op.f('fk_tenant_provider_credentials_tenant_id_tenants'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant_provider_credentials')),
        sa.UniqueConstraint('tenant_id', 'provider', name='uq_tenant_provider_credentials'),
    )
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('credentials_id', sa.String(length=40), nullable=True))
    with op.batch_alter_table('provider_files') as batch:
        batch.alter_column('provider', existing_type=sa.String(length=32), type_=sa.String(length=96))


def downgrade() -> None:
    with op.batch_alter_table('provider_files') as batch:
        batch.alter_column('provider', existing_type=sa.String(length=96), type_=sa.String(length=32))
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('credentials_id')
    op.drop_table('tenant_provider_credentials')
