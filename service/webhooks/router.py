"""Routes of the webhooks feature: OpenAI's `/v1/webhook_endpoints` (scope `webhooks`), each
endpoint's delivery log and redelivery; and `event_docs`, the events receivers get, for the
OpenAPI document's `webhooks` section."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import BaseModel, Field, create_model

from service.clock import utcnow
from service.contract import errors
from service.deps import DbSession, IdempotentCreate, WebhooksCaller, get_runtime
from service.idempotency.service import reload_owned
from service.pagination import After, Page
from service.routing import ServiceRoute
from service.webhooks import deliveries, delivery, service, transport
from service.webhooks.events import EVENT_DOCS, EVENT_TYPES, check_event_type
from service.webhooks.models import WebhookEndpointRow
from service.webhooks.schemas import (
    DeletedWebhookEndpoint,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointRotateSecret,
    WebhookEndpointTest,
    WebhookEndpointTestResult,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookEventTypeList,
    WebhookRedeliverFailed,
    WebhookRedeliveryResult,
)
from service.webhooks.urls import UrlGuard, guard_for

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=ServiceRoute)


def get_url_guard(request: Request) -> UrlGuard:
    return guard_for(get_runtime(request).settings)


def get_webhook_http() -> Iterator[httpx.Client]:
    with transport.http_client() as http:
        yield http


def get_endpoint_or_404(
    webhook_endpoint_id: str, session: DbSession, caller: WebhooksCaller
) -> WebhookEndpointRow:
    return service.get_endpoint(session, webhook_endpoint_id, tenant_id=caller.tenant_id)


Guard = Annotated[UrlGuard, Depends(get_url_guard)]
WebhookHttp = Annotated[httpx.Client, Depends(get_webhook_http)]
CurrentEndpoint = Annotated[WebhookEndpointRow, Depends(get_endpoint_or_404)]


@router.post("/webhook_endpoints", response_model=WebhookEndpointWithSecret)
def create_webhook_endpoint(
    body: WebhookEndpointCreate,
    session: DbSession,
    caller: WebhooksCaller,
    guard: Guard,
    idempotency: IdempotentCreate,
) -> WebhookEndpointWithSecret:
    """Create a webhook endpoint. Its signing secret is in this response only; store it now. With an
    `Idempotency-Key`, a retry (the first answer was lost) returns the same endpoint and secret."""
    return idempotency.create(
        session,
        tenant_id=caller.tenant_id,
        route="POST /v1/webhook_endpoints",
        parameters=body.model_dump(mode="json", exclude_unset=True),
        make=lambda: WebhookEndpointWithSecret.from_row(
            service.create_endpoint(session, body, tenant_id=caller.tenant_id, guard=guard)
        ),
        reload=reload_owned(
            session, WebhookEndpointRow, caller.tenant_id, WebhookEndpointWithSecret.from_row
        ),
    )


@router.get("/webhook_endpoints", response_model=WebhookEndpointList)
def list_webhook_endpoints(
    session: DbSession,
    caller: WebhooksCaller,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Endpoints per page (1-100).")] = 20,
) -> WebhookEndpointList:
    """List the caller's webhook endpoints, newest first."""
    rows, has_more = service.list_endpoints(session, tenant_id=caller.tenant_id, after=after, limit=limit)
    data = [WebhookEndpoint.from_row(row) for row in rows]
    return WebhookEndpointList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=has_more,
    )


@router.get("/webhook_endpoints/{webhook_endpoint_id}", response_model=WebhookEndpoint)
def retrieve_webhook_endpoint(endpoint: CurrentEndpoint) -> WebhookEndpoint:
    """Retrieve a webhook endpoint (its secret shows only as a hint)."""
    return WebhookEndpoint.from_row(endpoint)


@router.post("/webhook_endpoints/{webhook_endpoint_id}", response_model=WebhookEndpoint)
def update_webhook_endpoint(
    body: WebhookEndpointUpdate, endpoint: CurrentEndpoint, session: DbSession, guard: Guard
) -> WebhookEndpoint:
    """Change an endpoint's name, URL or event types. A new URL re-enables a disabled endpoint."""
    return WebhookEndpoint.from_row(service.update_endpoint(session, endpoint, body, guard=guard))


@router.delete("/webhook_endpoints/{webhook_endpoint_id}", response_model=DeletedWebhookEndpoint)
def delete_webhook_endpoint(endpoint: CurrentEndpoint, session: DbSession) -> DeletedWebhookEndpoint:
    """Delete an endpoint; its pending deliveries are dropped."""
    endpoint_id = endpoint.id
    service.delete_endpoint(session, endpoint)
    return DeletedWebhookEndpoint(id=endpoint_id)


@router.post(
    "/webhook_endpoints/{webhook_endpoint_id}/rotate_secret", response_model=WebhookEndpointWithSecret
)
def rotate_webhook_endpoint_secret(
    endpoint: CurrentEndpoint, session: DbSession, body: WebhookEndpointRotateSecret | None = None
) -> WebhookEndpointWithSecret:
    """Replace the signing secret; the new one is in this response only. With
    `keep_old_secret_active_for_24_hours`, deliveries carry both signatures for 24 hours."""
    keep_old = body.keep_old_secret_active_for_24_hours if body is not None else False
    return WebhookEndpointWithSecret.from_row(service.rotate_secret(session, endpoint, keep_old=keep_old))


@router.post("/webhook_endpoints/{webhook_endpoint_id}/test", response_model=WebhookEndpointTestResult)
def send_test_webhook(
    body: WebhookEndpointTest, endpoint: CurrentEndpoint, guard: Guard, http: WebhookHttp
) -> WebhookEndpointTestResult:
    """Send a signed sample event to the endpoint now, through the same URL checks and pinned
    connection as deliveries, and report the receiver's status code and the time it took."""
    event_type = check_event_type(body.event_type, param="event_type")
    outcome = delivery.send_test_event(endpoint, event_type, http=http, guard=guard, now=utcnow())
    return WebhookEndpointTestResult(
        webhook_endpoint_id=endpoint.id,
        event_type=event_type,
        status_code=outcome.status_code,
        duration_ms=outcome.duration_ms,
    )


@router.get("/webhook_event_types", response_model=WebhookEventTypeList)
def list_webhook_event_types(_: WebhooksCaller) -> WebhookEventTypeList:
    """The event types endpoints can subscribe to."""
    return WebhookEventTypeList(data=list(EVENT_TYPES))


MAX_UNIX = 253402300799  # the last second of year 9999
DeliveryId = Annotated[str, Path(description="The delivery's id (`whdel_…`).")]
REDELIVER_ERRORS = errors(
    409,
    s409="`webhook_endpoint_disabled`: enable the endpoint first; `webhook_delivery_pending`: the "
    "delivery's next attempt is already scheduled.",
)


def _moment(unix: int | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix is not None else None


@router.get("/webhook_endpoints/{webhook_endpoint_id}/deliveries", response_model=Page[WebhookDelivery])
def list_webhook_deliveries(
    endpoint: CurrentEndpoint,
    session: DbSession,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Deliveries per page (1-100).")] = 20,
    status: Annotated[
        deliveries.ShownStatus | None, Query(description="Only deliveries in this status.")
    ] = None,
    event_type: Annotated[str | None, Query(description="Only deliveries of events of this type.")] = None,
    event_id: Annotated[
        str | None, Query(min_length=1, max_length=40, description="Only the delivery of this event.")
    ] = None,
    created_after: Annotated[
        int | None, Query(ge=0, le=MAX_UNIX, description="Only events recorded at or after (unix seconds).")
    ] = None,
    created_before: Annotated[
        int | None, Query(ge=0, le=MAX_UNIX, description="Only events recorded before (unix seconds).")
    ] = None,
) -> Page[WebhookDelivery]:
    """The endpoint's delivery log, newest first: each delivery's status, every attempt (time,
    status code or error, duration, the start of the answer) and the next attempt."""
    filters = deliveries.DeliveryFilters(
        status=status,
        event_type=check_event_type(event_type, param="event_type") if event_type is not None else None,
        event_id=event_id,
        created_after=_moment(created_after),
        created_before=_moment(created_before),
    )
    views, has_more = deliveries.list_deliveries(session, endpoint, filters=filters, after=after, limit=limit)
    return Page[WebhookDelivery].of([WebhookDelivery.from_view(view) for view in views], has_more)


@router.get(
    "/webhook_endpoints/{webhook_endpoint_id}/deliveries/{delivery_id}", response_model=WebhookDelivery
)
def retrieve_webhook_delivery(
    delivery_id: DeliveryId, endpoint: CurrentEndpoint, session: DbSession
) -> WebhookDelivery:
    """One delivery of the endpoint, with every attempt."""
    return WebhookDelivery.from_view(deliveries.get_delivery(session, endpoint, delivery_id))


@router.post(
    "/webhook_endpoints/{webhook_endpoint_id}/deliveries/{delivery_id}/redeliver",
    response_model=WebhookDelivery,
    responses=REDELIVER_ERRORS,
)
def redeliver_webhook_delivery(
    delivery_id: DeliveryId, endpoint: CurrentEndpoint, session: DbSession
) -> WebhookDelivery:
    """Send a finished delivery again now, with the same event and `webhook-id` (receivers that
    deduplicate on it see it once)."""
    return WebhookDelivery.from_view(deliveries.redeliver(session, endpoint, delivery_id))


@router.post(
    "/webhook_endpoints/{webhook_endpoint_id}/redeliver",
    response_model=WebhookRedeliveryResult,
    responses=REDELIVER_ERRORS,
)
def redeliver_failed_webhooks(
    body: WebhookRedeliverFailed, endpoint: CurrentEndpoint, session: DbSession
) -> WebhookRedeliveryResult:
    """Send again every failed delivery of events recorded since `failed_since` (after a repair)."""
    since = datetime.fromtimestamp(body.failed_since, UTC)
    count = deliveries.redeliver_failed(session, endpoint, since=since)
    return WebhookRedeliveryResult(webhook_endpoint_id=endpoint.id, redelivered=count)


# The events endpoints receive, documented (the app adds them to `app.webhooks`).

SIGNED = (
    "Signed like OpenAI's webhooks (Standard Webhooks): verify with `client.webhooks.unwrap(body, "
    "headers, secret=...)` before parsing. `webhook-id` (the event id) is the same on every attempt "
    "and redelivery: deduplicate on it. Answer 2xx within 15 s; anything else is retried on the "
    "schedule, 410 Gone disables the endpoint."
)

event_docs = APIRouter()


class EventData(BaseModel):
    id: str = Field(description="The object the event is about; fetch it by this id.")


def _envelope(event_type: str, summary: str, example: str) -> type[BaseModel]:
    name = "".join(part.capitalize() for part in event_type.replace("_", ".").split(".")) + "Event"
    object_type: Any = Literal["event"]
    type_type: Any = Literal[event_type]
    return create_model(
        name,
        __doc__=summary,
        id=(str, Field(description="The event id (`evt_…`), also sent as `webhook-id`.")),
        object=(object_type, "event"),
        type=(type_type, event_type),
        created_at=(int, Field(description="When the event was recorded (unix seconds).")),
        data=(EventData, Field(json_schema_extra={"example": {"id": example}})),
    )


def _document(event_type: str, summary: str, about: str, example: str) -> None:
    model = _envelope(event_type, summary, example)

    def receive(
        body: BaseModel,
        webhook_id: str = Header(alias="webhook-id"),
        webhook_timestamp: str = Header(alias="webhook-timestamp"),
        webhook_signature: str = Header(alias="webhook-signature"),
    ) -> None:
        """Never called: the shape of a delivery, for the document."""

    receive.__annotations__["body"] = model  # this event's envelope (annotations are strings here)

    event_docs.add_api_route(
        event_type,
        receive,
        methods=["POST"],
        summary=summary,
        description=f"Sent about a {about}. {SIGNED}",
        status_code=200,
        response_description="Any 2xx acknowledges the delivery.",
        operation_id=f"webhook_{event_type.replace('.', '_')}",
    )


for _type, (_summary, _about, _example) in EVENT_DOCS.items():
    _document(_type, _summary, _about, _example)
