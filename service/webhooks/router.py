"""Routes of the webhooks feature: OpenAI's `/v1/webhook_endpoints` (scope `webhooks`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Query, Request

from service.clock import utcnow
from service.deps import DbSession, IdempotentCreate, WebhooksCaller, get_runtime
from service.idempotency.service import reload_owned
from service.pagination import After
from service.routing import ServiceRoute
from service.webhooks import delivery, service
from service.webhooks.events import EVENT_TYPES, check_event_type
from service.webhooks.models import WebhookEndpointRow
from service.webhooks.schemas import (
    DeletedWebhookEndpoint,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointRotateSecret,
    WebhookEndpointTest,
    WebhookEndpointTestResult,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookEventTypeList,
)
from service.webhooks.urls import UrlGuard

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=ServiceRoute)


def get_url_guard(request: Request) -> UrlGuard:
    return UrlGuard.for_env(get_runtime(request).settings.env)


def get_webhook_http() -> Iterator[httpx.Client]:
    with delivery.http_client() as http:
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
    """Send a signed sample event to the endpoint now and report the receiver's status code."""
    event_type = check_event_type(body.event_type, param="event_type")
    status_code = delivery.send_test_event(endpoint, event_type, http=http, guard=guard, now=utcnow())
    return WebhookEndpointTestResult(
        webhook_endpoint_id=endpoint.id, event_type=event_type, status_code=status_code
    )


@router.get("/webhook_event_types", response_model=WebhookEventTypeList)
def list_webhook_event_types(_: WebhooksCaller) -> WebhookEventTypeList:
    """The event types endpoints can subscribe to."""
    return WebhookEventTypeList(data=list(EVENT_TYPES))
