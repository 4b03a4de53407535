"""Reading a tenant's usage back, grouped by day or hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from service.clock import to_unix
from service.errors import InvalidRequest
from service.usage.records import Counters
from service.usage.schemas import UsageBucket
from service.usage.store import UsageFilter, read_rows

Period = Literal["day", "hour"]
DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=366)


@dataclass(frozen=True)
class _Group:
    start: datetime
    key_id: str
    deployment: str
    deployment_version: int
    model: str
    provider: str


def usage_filter(
    *,
    start_time: int | None,
    end_time: int | None,
    key_id: str | None,
    deployment: str | None,
    model: str | None,
    now: datetime,
) -> UsageFilter:
    """The filter for these query parameters (a 400 naming the parameter when they do not fit)."""
    end = datetime.fromtimestamp(end_time, UTC) if end_time is not None else now
    start = datetime.fromtimestamp(start_time, UTC) if start_time is not None else end - DEFAULT_RANGE
    if start >= end:
        raise InvalidRequest("start_time must be before end_time.", param="start_time", code="invalid_value")
    if end - start > MAX_RANGE:
        raise InvalidRequest(
            f"The time range may span at most {MAX_RANGE.days} days.",
            param="start_time",
            code="invalid_value",
        )
    # hours are whole: a range starting mid-hour includes that hour
    start = start.replace(minute=0, second=0, microsecond=0)
    return UsageFilter(start=start, end=end, key_id=key_id, deployment=deployment, model=model)


def usage_buckets(session: Session, tenant_id: str, where: UsageFilter, period: Period) -> list[UsageBucket]:
    """The tenant's usage matching `where`, summed by `period` (UTC days or hours), key, deployment
    version, model and provider; oldest period first."""
    sums: dict[_Group, Counters] = {}
    for row in read_rows(session, tenant_id, where):
        start = row.hour if period == "hour" else row.hour.replace(hour=0)
        group = _Group(start, row.key_id, row.deployment, row.deployment_version, row.model, row.provider)
        counters = sums.setdefault(group, Counters())
        counters.add(
            Counters(
                row.requests,
                row.errors,
                row.input_tokens,
                row.output_tokens,
                row.latency_ms_total,
                row.cost_usd,
            )
        )
    length = timedelta(hours=1) if period == "hour" else timedelta(days=1)
    ordered = sorted(sums.items(), key=lambda item: (item[0].start, item[0].key_id, item[0].model))
    return [
        UsageBucket(
            start_time=to_unix(group.start) or 0,
            end_time=to_unix(group.start + length) or 0,
            key_id=group.key_id,
            deployment=group.deployment or None,
            deployment_version=group.deployment_version or None,
            model=group.model,
            provider=group.provider,
            requests=c.requests,
            errors=c.errors,
            input_tokens=c.input_tokens,
            output_tokens=c.output_tokens,
            latency_ms_avg=round(c.latency_ms_total / c.requests, 3) if c.requests else 0.0,
            cost_usd=round(c.cost_usd, 9) if c.cost_usd is not None else None,
        )
        for group, c in ordered
    ]
