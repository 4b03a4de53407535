"""Writing usage sums (upserts that add to the counters, on SQLite and PostgreSQL alike) and
reading them back for one tenant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.tenancy import owned
from service.usage.models import UsageRow
from service.usage.records import BucketKey, Counters

_BUCKET = ["tenant_id", "key_id", "deployment", "deployment_version", "model", "provider", "hour"]
_COUNTERS = ["requests", "errors", "input_tokens", "output_tokens", "latency_ms_total"]


def write_sums(session: Session, sums: Mapping[BucketKey, Counters]) -> None:
    """Add `sums` to their hourly rows, creating the rows that do not exist yet."""
    if not sums:
        return
    values = [
        {
            "tenant_id": key.tenant_id,
            "key_id": key.key_id,
            "deployment": key.deployment,
            "deployment_version": key.deployment_version,
            "model": key.model,
            "provider": key.provider,
            "hour": key.hour,
            "requests": c.requests,
            "errors": c.errors,
            "input_tokens": c.input_tokens,
            "output_tokens": c.output_tokens,
            "latency_ms_total": c.latency_ms_total,
            "cost_usd": c.cost_usd,
        }
        for key, c in sums.items()
    ]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = UsageRow.__table__
    insert = dialect.insert(table)
    excluded = insert.excluded
    updates: dict[str, Any] = {name: table.c[name] + excluded[name] for name in _COUNTERS}
    updates["cost_usd"] = case(
        (table.c.cost_usd.is_(None) & excluded.cost_usd.is_(None), None),
        else_=func.coalesce(table.c.cost_usd, 0.0) + func.coalesce(excluded.cost_usd, 0.0),
    )
    # Sorted, so that two processes flushing the same buckets lock rows in one order (no deadlock).
    values.sort(key=lambda row: tuple(str(row[name]) for name in _BUCKET))
    session.execute(insert.on_conflict_do_update(index_elements=_BUCKET, set_=updates), values)


@dataclass(frozen=True)
class UsageFilter:
    start: datetime | None = None
    end: datetime | None = None
    key_id: str | None = None
    deployment: str | None = None
    model: str | None = None


def read_rows(session: Session, tenant_id: str, where: UsageFilter) -> list[UsageRow]:
    """The tenant's hourly rows matching `where`, oldest first (`start` inclusive, `end` exclusive)."""
    query = owned(UsageRow, tenant_id)
    if where.start is not None:
        query = query.where(UsageRow.hour >= where.start)
    if where.end is not None:
        query = query.where(UsageRow.hour < where.end)
    if where.key_id is not None:
        query = query.where(UsageRow.key_id == where.key_id)
    if where.deployment is not None:
        query = query.where(UsageRow.deployment == where.deployment)
    if where.model is not None:
        query = query.where(UsageRow.model == where.model)
    return list(session.scalars(query.order_by(UsageRow.hour, UsageRow.id)))
