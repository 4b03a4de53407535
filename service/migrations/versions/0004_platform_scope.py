"""platform scope: the active admin keys of tenant default become platform admins

Before this revision any `admin` key administered the whole platform, and keys of tenant `default`
(the bootstrap key's tenant) were how operators did it. `admin` now administers only its own
tenant, so those keys get `platform` too and an upgrade leaves the operator in control. Revoked and
expired keys are left alone. No schema change: scopes are a JSON list.

Downgrade turns `platform` back into `admin`, the scope that carried its powers before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:51:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0004'
# Follows '0003' once that lands; until then this branch chains onto '0002'.
down_revision = '0003'
branch_labels = None
depends_on = None

tenants = sa.table('tenants', sa.column('id', sa.String), sa.column('name', sa.String))
api_keys = sa.table(
    'api_keys',
    sa.column('id', sa.String),
    sa.column('tenant_id', sa.String),
    sa.column('scopes', sa.JSON),
    sa.column('expires_at', service.db.UTCDateTime(timezone=True)),
    sa.column('revoked_at', service.db.UTCDateTime(timezone=True)),
)


def upgrade() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)
    rows = connection.execute(
        sa.select(api_keys.c.id, api_keys.c.scopes, api_keys.c.expires_at)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .where(tenants.c.name == 'default', api_keys.c.revoked_at.is_(None))
    )
    for key_id, scopes, expires_at in rows.all():
        if 'admin' in scopes and 'platform' not in scopes and (expires_at is None or expires_at > now):
            _set_scopes(key_id, sorted({*scopes, 'platform'}))


def downgrade() -> None:
    connection = op.get_bind()
    for key_id, scopes in connection.execute(sa.select(api_keys.c.id, api_keys.c.scopes)).all():
        if 'platform' in scopes:
            _set_scopes(key_id, sorted({*scopes, 'admin'} - {'platform'}))


def _set_scopes(key_id: str, scopes: list[str]) -> None:
    op.get_bind().execute(api_keys.update().where(api_keys.c.id == key_id).values(scopes=scopes))
