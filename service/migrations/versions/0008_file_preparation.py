"""prepared files: the source file each was made from, and the preparation's options and summary

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02 01:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_file_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('preparation', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_column('preparation')
        batch_op.drop_column('source_file_id')
