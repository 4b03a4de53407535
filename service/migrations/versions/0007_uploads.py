"""uploads and their parts: OpenAI's /v1/uploads, for files larger than one request

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('uploads',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('mime_type', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('file_expires_after_s', sa.BigInteger(), nullable=True),
    sa.Column('file_id', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_uploads_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uploads'))
    )
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.create_index('ix_uploads_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_uploads_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('upload_parts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('upload_id', sa.String(length=40), nullable=False),
    sa.Column('blob_key', sa.String(length=255), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['upload_id'], ['uploads.id'], name=op.f('fk_upload_parts_upload_id_uploads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upload_parts'))
    )
    with op.batch_alter_table('upload_parts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_parts_blob_key'), ['blob_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_upload_parts_upload_id'), ['upload_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('upload_parts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_parts_upload_id'))
        batch_op.drop_index(batch_op.f('ix_upload_parts_blob_key'))
    op.drop_table('upload_parts')
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_uploads_tenant_id'))
        batch_op.drop_index('ix_uploads_status_expires')
    op.drop_table('uploads')
