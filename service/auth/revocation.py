"""Revoking API keys."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.auth.models import ApiKeyRow
from service.clock import utcnow


def revoke_key(session: Session, row: ApiKeyRow) -> ApiKeyRow:
    """Revoke `row` (idempotent)."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
