"""`GET /v1/usage`: the caller's tenant's proxy usage, grouped by day or hour."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from service.clock import utcnow
from service.contract import errors
from service.deps import DbSession, InferenceCaller
from service.routing import ServiceRoute
from service.usage import service
from service.usage.schemas import UsageList

router = APIRouter(prefix="/v1", tags=["usage"], route_class=ServiceRoute)


@router.get("/usage", response_model=UsageList, responses=errors(400))
def list_usage(
    session: DbSession,
    caller: InferenceCaller,
    group_by: Annotated[Literal["day", "hour"], Query(description="Sum by UTC day or hour.")] = "day",
    start_time: Annotated[
        int | None, Query(ge=0, description="Unix seconds, inclusive (its hour); default: 30 days ago.")
    ] = None,
    end_time: Annotated[int | None, Query(ge=0, description="Unix seconds, exclusive; default: now.")] = None,
    key_id: Annotated[str | None, Query(description="Only this API key's requests.")] = None,
    deployment: Annotated[str | None, Query(description="Only requests that named this deployment.")] = None,
    model: Annotated[str | None, Query(description="Only requests this model answered.")] = None,
) -> UsageList:
    """Your tenant's inference usage through the proxy: requests, errors, input and output tokens,
    mean latency and cost, per key, deployment version, model and provider, by day or hour.
    Each API process writes its usage every second (`FTM_USAGE_FLUSH_INTERVAL_S`), so the last
    second may not be in yet. Another tenant's usage is never included."""
    where = service.usage_filter(
        start_time=start_time,
        end_time=end_time,
        key_id=key_id,
        deployment=deployment,
        model=model,
        now=utcnow(),
    )
    return UsageList(
        group_by=group_by, data=service.usage_buckets(session, caller.tenant_id, where, group_by)
    )
