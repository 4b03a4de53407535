"""webhook delivery log: each attempt's (truncated) response body, when an endpoint started
failing (the 5-day disable rule), and an index to page an endpoint's deliveries

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 02:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_attempts') as batch:
        batch.add_column(sa.Column('response_body', sa.Text(), nullable=True))
    with op.batch_alter_table('webhook_endpoints') as batch:
        batch.add_column(sa.Column('failing_since', service.db.UTCDateTime(timezone=True), nullable=True))
    op.create_index(
        'ix_webhook_deliveries_endpoint_created',
        'webhook_deliveries',
        ['endpoint_id', 'created_at', 'id'],
    )


def downgrade() -> None:
    op.drop_index('ix_webhook_deliveries_endpoint_created', table_name='webhook_deliveries')
    with op.batch_alter_table('webhook_endpoints') as batch:
        batch.drop_column('failing_since')
    with op.batch_alter_table('webhook_attempts') as batch:
        batch.drop_column('response_body')
