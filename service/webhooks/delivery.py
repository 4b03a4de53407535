"""Sending webhooks: one attempt of a delivery, its log, and when to try again.

An attempt POSTs the event's envelope, signed, to the endpoint's URL, after checking the URL
again (DNS answers change; a blocked destination is a failed attempt, `blocked_destination`). It
never follows redirects (3xx is a failure); 2xx is success; 410 Gone disables the endpoint and
fails the delivery; anything else schedules the next attempt (`schedule.retry_delay`) until the
last one, after which the delivery is `failed` and kept. Every attempt is logged as a
`WebhookAttemptRow`.

Retries are not Celery countdowns: `enqueue_due` (the `webhooks.sweep` task, every 5 s) queues
the deliveries that are due through the outbox, leasing each for `ENQUEUE_LEASE`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.clock import to_unix
from service.errors import InvalidRequest
from service.ids import new_id
from service.outbox import service as outbox
from service.tasks import TaskName
from service.webhooks.events import render_event, sample_event
from service.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookEventRow,
)
from service.webhooks.schedule import ENQUEUE_LEASE, parse_retry_after, retry_delay
from service.webhooks.service import active_secrets
from service.webhooks.signing import webhook_headers
from service.webhooks.urls import UrlGuard, UrlRejected

log = logging.getLogger(__name__)

USER_AGENT = "finetune-manager-webhooks/1.0"
TIMEOUT = httpx.Timeout(15.0)
MAX_ERROR_LENGTH = 500
MAX_RESPONSE_BODY = 1024  # bytes of the receiver's answer kept in the delivery log
DISABLE_AFTER = timedelta(days=5)  # of nothing but failures (Svix's rule)


def http_client() -> httpx.Client:
    """The client deliveries use: 15 s timeout, no redirects, no proxy settings from the env."""
    return httpx.Client(
        timeout=TIMEOUT, follow_redirects=False, trust_env=False, headers={"User-Agent": USER_AGENT}
    )


@dataclass(frozen=True)
class SendResult:
    """What one POST gave: the receiver's status, or the error that prevented an answer."""

    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: timedelta | None = None
    response_body: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(
    http: httpx.Client, url: str, *, msg_id: str, body: bytes, secrets: list[str], now: datetime
) -> SendResult:
    """POST `body` signed with `secrets` at time `now`; never raises for network failures."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **webhook_headers(msg_id=msg_id, timestamp=int(now.timestamp()), body=body, secrets=secrets),
    }
    started = time.monotonic()
    try:
        with http.stream(
            "POST", url, content=body, headers=headers, timeout=TIMEOUT, follow_redirects=False
        ) as response:
            status, retry_after = response.status_code, response.headers.get("retry-after")
            answer = _read_prefix(response.iter_bytes())
    except httpx.TimeoutException as error:
        return SendResult(None, f"timeout: {type(error).__name__}", _ms_since(started))
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return SendResult(
            None, f"connection_error: {type(error).__name__}: {error}"[:MAX_ERROR_LENGTH], _ms_since(started)
        )
    error_code = "redirect_not_followed" if 300 <= status < 400 else None
    return SendResult(status, error_code, _ms_since(started), parse_retry_after(retry_after, now=now), answer)


def _read_prefix(chunks: Iterable[bytes]) -> str:
    """The first `MAX_RESPONSE_BODY` bytes of a response, decoded leniently; the rest is not read."""
    kept = bytearray()
    for chunk in chunks:
        kept.extend(chunk[: MAX_RESPONSE_BODY - len(kept)])
        if len(kept) >= MAX_RESPONSE_BODY:
            break
    return kept.decode("utf-8", errors="replace")


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def deliver(
    session: Session,
    delivery_id: str,
    *,
    http: httpx.Client,
    guard: UrlGuard,
    now: datetime,
    rng: random.Random | None = None,
) -> WebhookAttemptRow | None:
    """Make the delivery's next attempt; returns its log row, or None when nothing was sent
    (unknown, already finished, not due yet, or its endpoint disabled). Idempotent."""
    delivery = session.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + ENQUEUE_LEASE:
        return None  # a stale duplicate of an earlier attempt's task
    endpoint = session.get(WebhookEndpointRow, delivery.endpoint_id)
    event = session.get(WebhookEventRow, delivery.event_id)
    if endpoint is None or event is None:
        return None
    if endpoint.status != EndpointStatus.ENABLED:
        delivery.status, delivery.next_attempt_at, delivery.last_error = (
            DeliveryStatus.FAILED,
            None,
            "endpoint_disabled",
        )
        return None

    try:
        guard.check(endpoint.url)
    except UrlRejected as rejected:
        log.warning(
            "webhook destination blocked", extra={"delivery_id": delivery.id, "reason": rejected.reason}
        )
        result = SendResult(None, "blocked_destination", 0)
    else:
        body = render_event(event)
        secrets = active_secrets(endpoint, now)
        result = send(http, endpoint.url, msg_id=event.id, body=body, secrets=secrets, now=now)

    attempt = WebhookAttemptRow(
        id=new_id("whatt_"),
        delivery_id=delivery.id,
        attempted_at=now,
        status_code=result.status_code,
        error=result.error,
        duration_ms=result.duration_ms,
        response_body=result.response_body,
    )
    session.add(attempt)
    _record(delivery, endpoint, result, now=now, rng=rng)
    session.flush()
    return attempt


def _record(
    delivery: WebhookDeliveryRow,
    endpoint: WebhookEndpointRow,
    result: SendResult,
    *,
    now: datetime,
    rng: random.Random | None,
) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code, delivery.last_error = (
        now,
        result.status_code,
        result.error,
    )
    outcome = {"delivery_id": delivery.id, "attempt": delivery.attempts, "status_code": result.status_code}
    if result.ok:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, None
        endpoint.failing_since = None
        log.info("webhook delivered", extra=outcome)
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    if now - endpoint.failing_since >= DISABLE_AFTER and endpoint.status == EndpointStatus.ENABLED:
        endpoint.status = EndpointStatus.DISABLED
        endpoint.disabled_reason = (
            f"Every delivery failed from {endpoint.failing_since.isoformat(timespec='seconds')} to "
            f"{now.isoformat(timespec='seconds')} (5 days); update the endpoint to enable it again."
        )
        log.warning("webhook endpoint disabled after 5 days of failures", extra={"endpoint_id": endpoint.id})
    if endpoint.status != EndpointStatus.ENABLED:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        return
    if result.status_code == 410:
        endpoint.status = EndpointStatus.DISABLED
        endpoint.disabled_reason = f"The receiver answered 410 Gone at {now.isoformat(timespec='seconds')}."
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        log.warning("webhook endpoint disabled by 410 Gone", extra={**outcome, "endpoint_id": endpoint.id})
        return
    delay = retry_delay(delivery.attempts, retry_after=result.retry_after, rng=rng)
    if delay is None:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        log.warning("webhook delivery failed; attempts exhausted", extra=outcome)
        return
    delivery.next_attempt_at = now + delay
    log.info(
        "webhook attempt failed; will retry", extra={**outcome, "retry_in_s": int(delay.total_seconds())}
    )


def enqueue_due(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Queue (via the outbox) every pending delivery that is due, leasing each so that a second
    sweep does not queue it again; returns how many were queued."""
    due = session.scalars(
        select(WebhookDeliveryRow.id)
        .where(WebhookDeliveryRow.status == DeliveryStatus.PENDING, WebhookDeliveryRow.next_attempt_at <= now)
        .order_by(WebhookDeliveryRow.next_attempt_at)
        .limit(limit)
    ).all()
    queued = 0
    for delivery_id in due:
        claimed = session.execute(
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.id == delivery_id,
                WebhookDeliveryRow.status == DeliveryStatus.PENDING,
                WebhookDeliveryRow.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + ENQUEUE_LEASE)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) == 1:
            outbox.enqueue(session, TaskName.WEBHOOKS_DELIVER, delivery_id=delivery_id)
            queued += 1
    return queued


def send_test_event(
    endpoint: WebhookEndpointRow, event_type: str, *, http: httpx.Client, guard: UrlGuard, now: datetime
) -> int:
    """Send a sample `event_type` event to the endpoint now; returns the receiver's status.
    400 naming `url` when the URL is blocked; 400 `webhook_test_failed` when there is no answer."""
    try:
        guard.check(endpoint.url)
    except UrlRejected as rejected:
        raise InvalidRequest(rejected.message, param="url", code=rejected.reason) from rejected
    event_id, body = sample_event(event_type, created_at=to_unix(now) or 0)
    result = send(
        http, endpoint.url, msg_id=event_id, body=body, secrets=active_secrets(endpoint, now), now=now
    )
    if result.status_code is None:
        raise InvalidRequest(
            f"The test event could not be delivered ({result.error}).", code="webhook_test_failed"
        )
    return result.status_code
