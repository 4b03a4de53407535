"""Webhook endpoints of a tenant, and events fanned out to them as deliveries.

Every query is scoped by tenant: another tenant's endpoint is `NotFound`, exactly like a missing
one. `emit_event` is the contract other features call, inside their own transaction: the event,
its deliveries and their outbox rows commit or roll back with the change that caused them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from service.clock import utcnow
from service.errors import InvalidRequest, NotFound
from service.ids import new_id
from service.tenancy import get_owned, keyset_page, owned
from service.webhooks.events import EVENT_TYPES, check_event_types
from service.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookEventRow,
)
from service.webhooks.queue import wake_workers
from service.webhooks.schemas import WebhookEndpointCreate, WebhookEndpointUpdate
from service.webhooks.signing import generate_secret
from service.webhooks.urls import UrlGuard, UrlRejected

log = logging.getLogger(__name__)

ROTATION_OVERLAP = timedelta(hours=24)


def check_url(guard: UrlGuard, url: str) -> str:
    """The URL if webhooks may be sent there; 400 naming `url` (code: the rule broken) if not."""
    try:
        return guard.check(url).url
    except UrlRejected as rejected:
        raise InvalidRequest(rejected.message, param="url", code=rejected.reason) from rejected


def create_endpoint(
    session: Session, req: WebhookEndpointCreate, *, tenant_id: str, guard: UrlGuard
) -> WebhookEndpointRow:
    event_types = check_event_types(req.event_types)
    url = check_url(guard, req.url)
    now = utcnow()
    row = WebhookEndpointRow(
        id=new_id("we_"),
        tenant_id=tenant_id,
        name=req.name,
        url=url,
        event_types=event_types,
        secret=generate_secret(),
        status=EndpointStatus.ENABLED,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def endpoint_not_found(endpoint_id: str) -> NotFound:
    return NotFound(
        f"No webhook endpoint with id '{endpoint_id}'.",
        param="webhook_endpoint_id",
        code="webhook_endpoint_not_found",
    )


def get_endpoint(session: Session, endpoint_id: str, *, tenant_id: str) -> WebhookEndpointRow:
    return get_owned(
        session, WebhookEndpointRow, endpoint_id, tenant_id=tenant_id, not_found=endpoint_not_found
    )


def list_endpoints(
    session: Session, *, tenant_id: str, after: str | None, limit: int
) -> tuple[list[WebhookEndpointRow], bool]:
    """A page of the tenant's endpoints, newest first, and whether more follow."""
    return keyset_page(
        session,
        owned(WebhookEndpointRow, tenant_id),
        keys=(WebhookEndpointRow.created_at, WebhookEndpointRow.id),
        identity=WebhookEndpointRow.id,
        after=after,
        limit=limit,
    )


def update_endpoint(
    session: Session, row: WebhookEndpointRow, req: WebhookEndpointUpdate, *, guard: UrlGuard
) -> WebhookEndpointRow:
    """Apply the fields given; `updated_at` moves only when something changes. A new URL, or
    `status: "enabled"`, re-enables a disabled endpoint (410 Gone, or 5 days of failures)."""
    changes: dict[str, object] = {}
    if req.name is not None and req.name != row.name:
        changes["name"] = req.name
    if req.event_types is not None:
        event_types = check_event_types(req.event_types)
        if event_types != list(row.event_types):
            changes["event_types"] = event_types
    if req.url is not None and req.url != row.url:
        changes["url"] = check_url(guard, req.url)
        changes["status"], changes["disabled_reason"] = EndpointStatus.ENABLED, None
    if req.status == "enabled" and row.status != EndpointStatus.ENABLED:
        changes["status"], changes["disabled_reason"] = EndpointStatus.ENABLED, None
    if changes.get("status") == EndpointStatus.ENABLED:
        changes["failing_since"] = None
    for name, value in changes.items():
        setattr(row, name, value)
    if changes:
        row.updated_at = utcnow()
        session.flush()
    return row


def delete_endpoint(session: Session, row: WebhookEndpointRow) -> None:
    """Delete the endpoint; its deliveries and their log go with it (foreign-key cascade)."""
    session.delete(row)
    session.flush()


def rotate_secret(session: Session, row: WebhookEndpointRow, *, keep_old: bool) -> WebhookEndpointRow:
    now = utcnow()
    row.previous_secret = row.secret if keep_old else None
    row.previous_secret_expires_at = now + ROTATION_OVERLAP if keep_old else None
    row.secret = generate_secret()
    row.updated_at = now
    session.flush()
    return row


def active_secrets(row: WebhookEndpointRow, now: datetime) -> list[str]:
    """The secrets a delivery is signed with: the current one, then a still-valid previous one."""
    active = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and expires > now:
        active.append(row.previous_secret)
    return active


def emit_event(session: Session, *, tenant_id: str, type: str, data_id: str) -> WebhookEventRow:
    """Record event `type` about object `data_id` and queue one delivery per enabled endpoint of
    the tenant subscribed to it, in the caller's transaction (nothing is sent if it rolls back).

    The deliveries are due at once, and a `webhooks.deliver` task is queued through the outbox to
    wake a worker, which claims (leases) every due delivery, this event's and others', and makes
    their attempts concurrently; the sweep claims any that no worker took.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    now = utcnow()
    event = WebhookEventRow(
        id=new_id("evt_"), tenant_id=tenant_id, type=type, data={"id": data_id}, created_at=now
    )
    session.add(event)
    session.flush()
    endpoints = session.scalars(
        owned(WebhookEndpointRow, tenant_id)
        .where(WebhookEndpointRow.status == EndpointStatus.ENABLED)
        .order_by(WebhookEndpointRow.created_at)
    )
    queued: list[str] = []
    for endpoint in endpoints:
        if type not in endpoint.event_types:
            continue
        delivery = WebhookDeliveryRow(
            id=new_id("whdel_"),
            tenant_id=tenant_id,
            event_id=event.id,
            endpoint_id=endpoint.id,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(delivery)
        queued.append(delivery.id)
    session.flush()
    if queued:
        wake_workers(session)
    log.info("webhook event emitted", extra={"event_id": event.id, "event_type": type})
    return event
