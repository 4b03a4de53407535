"""Reading and setting the per-minute limits of tenants and keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.limits.models import LimitRow

LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute")


def limits_of(session: Session, owner_ids: Iterable[str]) -> dict[str, LimitRow]:
    """The limits set on these tenants or keys, by owner id (an owner with none set is absent)."""
    ids = list(owner_ids)
    if not ids:
        return {}
    rows = session.scalars(select(LimitRow).where(LimitRow.owner_id.in_(ids)))
    return {row.owner_id: row for row in rows}


def set_limits(
    session: Session, *, tenant_id: str, owner_id: str, limits: Mapping[str, int | None]
) -> LimitRow:
    """Apply the given limits (`requests_per_minute`, `tokens_per_minute`) to the tenant or key
    `owner_id` of `tenant_id`; a limit not given keeps its value."""
    row = session.get(LimitRow, owner_id)
    if row is None:
        row = LimitRow(owner_id=owner_id, tenant_id=tenant_id)
        session.add(row)
    for name in LIMIT_FIELDS:
        if name in limits:
            setattr(row, name, limits[name])
    session.flush()
    return row
