"""submit claims: one worker submits a job, and uploads a file, at a time

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submit_claim', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('submit_claimed_until', service.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('provider_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('upload_claim', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('upload_claimed_until', service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column('provider_file_id', existing_type=sa.String(length=128), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM provider_files WHERE provider_file_id IS NULL")
    with op.batch_alter_table('provider_files', schema=None) as batch_op:
        batch_op.alter_column('provider_file_id', existing_type=sa.String(length=128), nullable=False)
        batch_op.drop_column('upload_claimed_until')
        batch_op.drop_column('upload_claim')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('submit_claimed_until')
        batch_op.drop_column('submit_claim')
