"""Revoking API keys, and the rule that keeps the platform administered.

The last active (neither revoked nor expired) key with the `platform` scope cannot be revoked: that
would leave nobody able to create tenants or keys but an operator with database access. The
refusal is a 409 `last_platform_admin_key`.

Two revokes of the last two platform keys, at once, must not both succeed:

- PostgreSQL: a revoke of a platform key first locks every active platform key (SELECT … FOR
  UPDATE, in id order so that two revokes cannot deadlock). The second revoke waits for the first
  to end, then re-reads the rows it locked and no longer finds the one the first revoked.
- SQLite takes no row locks but has one writer at a time. The revoke is written before the
  remaining keys are counted, so the count runs under the write lock and sees every committed revoke.

On a refusal the revoke is already written in the caller's transaction: raising rolls it back, as
every error raised in a request or a CLI command does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import cast, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from service.auth.keys import Scope
from service.auth.models import ApiKeyRow
from service.clock import utcnow
from service.db import is_postgres
from service.errors import Conflict


def revoke_key(session: Session, row: ApiKeyRow) -> ApiKeyRow:
    """Revoke `row` (idempotent), unless it is the last active platform key."""
    if row.revoked_at is not None:
        return row
    now = utcnow()
    guarded = row.is_active(now) and Scope.PLATFORM in row.scopes
    if guarded and row.id not in active_platform_key_ids(session, now, lock=True):
        session.refresh(row)  # a concurrent revoke got there first
        return row
    row.revoked_at = now
    session.flush()  # on SQLite, this write takes the writer's lock before the count below
    if guarded and not active_platform_key_ids(session, now):
        raise Conflict(
            f"API key '{row.id}' is the last active key with the 'platform' scope; "
            "create another platform key before revoking this one.",
            param="key_id",
            code="last_platform_admin_key",
        )
    return row


def active_platform_key_ids(session: Session, now: datetime, *, lock: bool = False) -> list[str]:
    """Ids of the keys holding `platform` that are neither revoked nor expired at `now`."""
    query = (
        select(ApiKeyRow.id, ApiKeyRow.scopes)
        .where(
            ApiKeyRow.revoked_at.is_(None), or_(ApiKeyRow.expires_at.is_(None), ApiKeyRow.expires_at > now)
        )
        .order_by(ApiKeyRow.id)
    )
    if is_postgres(session):
        # Lock only the platform keys, not every active key (authentication updates those).
        query = query.where(cast(ApiKeyRow.scopes, JSONB).contains([Scope.PLATFORM.value]))
    if lock:
        query = query.with_for_update()
    return [key_id for key_id, scopes in session.execute(query) if Scope.PLATFORM in scopes]
