"""The delivery log of an endpoint: its deliveries, filtered and paged, with every attempt; and
redelivery, of one delivery or of every failed one since a time.

A delivery is one event for one endpoint. The API shows four statuses: `pending` (no attempt
yet), `failing` (pending after at least one failed attempt), `succeeded` and `failed` (attempts
exhausted, or the endpoint disabled). A redelivery puts a finished delivery back to `pending` and
queues its attempt at once; the event, and so the `webhook-id` the receiver deduplicates on, stays
the same, and the earlier attempts stay in the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.orm import Session

from service.clock import utcnow
from service.errors import Conflict, NotFound
from service.tenancy import get_owned, keyset_page, owned
from service.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookEventRow,
)
from service.webhooks.queue import enqueue_attempts
from service.webhooks.schedule import ENQUEUE_LEASE

ShownStatus = Literal["pending", "failing", "succeeded", "failed"]
MAX_REDELIVER = 10_000  # failed deliveries requeued by one call; call again for more


@dataclass(frozen=True)
class DeliveryFilters:
    status: ShownStatus | None = None
    event_type: str | None = None
    event_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class DeliveryView:
    """A delivery with its event and its attempts, oldest first."""

    delivery: WebhookDeliveryRow
    event: WebhookEventRow
    attempts: list[WebhookAttemptRow]

    @property
    def status(self) -> ShownStatus:
        return shown_status(self.delivery)


def shown_status(row: WebhookDeliveryRow) -> ShownStatus:
    if row.status == DeliveryStatus.SUCCEEDED:
        return "succeeded"
    if row.status == DeliveryStatus.FAILED:
        return "failed"
    return "failing" if row.attempts > 0 else "pending"


def _status_clause(status: ShownStatus) -> ColumnElement[bool]:
    column = WebhookDeliveryRow.status
    if status == "pending":
        return (column == DeliveryStatus.PENDING) & (WebhookDeliveryRow.attempts == 0)
    if status == "failing":
        return (column == DeliveryStatus.PENDING) & (WebhookDeliveryRow.attempts > 0)
    return column == status


def _of_endpoint(endpoint: WebhookEndpointRow) -> Select[WebhookDeliveryRow]:
    return owned(WebhookDeliveryRow, endpoint.tenant_id).where(WebhookDeliveryRow.endpoint_id == endpoint.id)


def list_deliveries(
    session: Session,
    endpoint: WebhookEndpointRow,
    *,
    filters: DeliveryFilters,
    after: str | None,
    limit: int,
) -> tuple[list[DeliveryView], bool]:
    """A page of the endpoint's deliveries, newest first, narrowed by `filters`."""
    query = _of_endpoint(endpoint).join(WebhookEventRow, WebhookEventRow.id == WebhookDeliveryRow.event_id)
    if filters.status is not None:
        query = query.where(_status_clause(filters.status))
    if filters.event_type is not None:
        query = query.where(WebhookEventRow.type == filters.event_type)
    if filters.event_id is not None:
        query = query.where(WebhookDeliveryRow.event_id == filters.event_id)
    if filters.created_after is not None:
        query = query.where(WebhookDeliveryRow.created_at >= filters.created_after)
    if filters.created_before is not None:
        query = query.where(WebhookDeliveryRow.created_at < filters.created_before)
    rows, has_more = keyset_page(
        session,
        query,
        keys=(WebhookDeliveryRow.created_at, WebhookDeliveryRow.id),
        identity=WebhookDeliveryRow.id,
        after=after,
        limit=limit,
    )
    return _views(session, rows), has_more


def _views(session: Session, rows: Sequence[WebhookDeliveryRow]) -> list[DeliveryView]:
    if not rows:
        return []
    events = {
        event.id: event
        for event in session.scalars(
            select(WebhookEventRow).where(WebhookEventRow.id.in_({row.event_id for row in rows}))
        )
    }
    attempts: dict[str, list[WebhookAttemptRow]] = {row.id: [] for row in rows}
    for attempt in session.scalars(
        select(WebhookAttemptRow)
        .where(WebhookAttemptRow.delivery_id.in_(attempts))
        .order_by(WebhookAttemptRow.attempted_at, WebhookAttemptRow.id)
    ):
        attempts[attempt.delivery_id].append(attempt)
    return [DeliveryView(row, events[row.event_id], attempts[row.id]) for row in rows]


def delivery_not_found(delivery_id: str) -> NotFound:
    return NotFound(
        f"No delivery with id '{delivery_id}' for this webhook endpoint.",
        param="delivery_id",
        code="webhook_delivery_not_found",
    )


def get_delivery(session: Session, endpoint: WebhookEndpointRow, delivery_id: str) -> DeliveryView:
    row = get_owned(
        session,
        WebhookDeliveryRow,
        delivery_id,
        tenant_id=endpoint.tenant_id,
        not_found=delivery_not_found,
        where=(WebhookDeliveryRow.endpoint_id == endpoint.id,),
    )
    return _views(session, [row])[0]


def _require_enabled(endpoint: WebhookEndpointRow) -> None:
    if endpoint.status != EndpointStatus.ENABLED:
        raise Conflict(
            "The webhook endpoint is disabled; enable it (update it with status 'enabled') before "
            "redelivering.",
            code="webhook_endpoint_disabled",
        )


def _requeue(session: Session, delivery_ids: Sequence[str], *, now: datetime) -> None:
    session.execute(
        update(WebhookDeliveryRow)
        .where(WebhookDeliveryRow.id.in_(delivery_ids))
        .values(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now + ENQUEUE_LEASE,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    )
    enqueue_attempts(session, delivery_ids)
    session.expire_all()


def redeliver(session: Session, endpoint: WebhookEndpointRow, delivery_id: str) -> DeliveryView:
    """Send a finished delivery (failed or succeeded) again, with the same event and webhook-id.
    409 while it is still pending (its next attempt is already scheduled) or the endpoint is
    disabled."""
    view = get_delivery(session, endpoint, delivery_id)
    _require_enabled(endpoint)
    if view.delivery.status == DeliveryStatus.PENDING:
        raise Conflict(
            "The delivery is still pending; its next attempt is already scheduled.",
            param="delivery_id",
            code="webhook_delivery_pending",
        )
    _requeue(session, [view.delivery.id], now=utcnow())
    return get_delivery(session, endpoint, delivery_id)


def redeliver_failed(session: Session, endpoint: WebhookEndpointRow, *, since: datetime) -> int:
    """Requeue every failed delivery of the endpoint created at or after `since` (at most
    `MAX_REDELIVER`, oldest first); returns how many. 409 when the endpoint is disabled."""
    _require_enabled(endpoint)
    ids = list(
        session.scalars(
            owned(WebhookDeliveryRow, endpoint.tenant_id)
            .with_only_columns(WebhookDeliveryRow.id)
            .where(
                WebhookDeliveryRow.endpoint_id == endpoint.id,
                WebhookDeliveryRow.status == DeliveryStatus.FAILED,
                WebhookDeliveryRow.created_at >= since,
            )
            .order_by(WebhookDeliveryRow.created_at, WebhookDeliveryRow.id)
            .limit(MAX_REDELIVER)
        )
    )
    if ids:
        _requeue(session, ids, now=utcnow())
    return len(ids)
