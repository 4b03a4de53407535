"""personal data policies (per tenant and per file, with the redacted copy's link), monthly training
budgets per tenant, and each job's estimated cost

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenants') as batch:
        batch.add_column(sa.Column('personal_data_policy', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('monthly_training_budget_usd', sa.Float(), nullable=True))
    with op.batch_alter_table('files') as batch:
        batch.add_column(sa.Column('personal_data_policy', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('redacted_file_id', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('redacted_from', sa.String(length=40), nullable=True))
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('estimated_cost_usd', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('estimated_cost_usd')
    with op.batch_alter_table('files') as batch:
        batch.drop_column('redacted_from')
        batch.drop_column('redacted_file_id')
        batch.drop_column('personal_data_policy')
    with op.batch_alter_table('tenants') as batch:
        batch.drop_column('monthly_training_budget_usd')
        batch.drop_column('personal_data_policy')
