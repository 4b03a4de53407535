"""Sending webhooks: attempts of deliveries, their log, and when to try again.

An attempt POSTs the event's envelope, signed, to the endpoint's URL, after checking the URL
again (DNS answers change; a blocked destination is a failed attempt, `blocked_destination`) and
connecting to the address that check approved (`service.webhooks.transport`: the Host header and
the TLS server name keep the URL's host, so a rebinding DNS answer is never used). It never
follows redirects (3xx is a failure); 2xx is success; 410 Gone disables the endpoint and
fails the delivery; anything else schedules the next attempt (`schedule.retry_delay`) until the
last one, after which the delivery is `failed` and kept. Every attempt is logged as a
`WebhookAttemptRow`.

An attempt has three steps: `_prepare` (in a transaction: is it due, where does it go, what is
sent), the request (no transaction open), `_record` (in a transaction: the attempt's log row and
the delivery's next state). `deliver` runs one attempt synchronously; `deliver_batch`, what the
workers run, makes the attempts of many deliveries concurrently through a `Sender` (the workers'
is aiohttp-based, `transport.PinnedSender`), at most `concurrency` requests in flight and
`per_endpoint` to any one endpoint, in this process and, with a `limits.RedisEndpointLimiter`,
across every worker process, so that a slow receiver holds only its own share. A batch costs
three transactions whatever its size: the claim (`claim_due`), one load of its deliveries,
endpoints and events (`_load`), one store of every outcome, rows locked in id order. The outcome
is in the database once the batch's last step commits; a worker that dies before leaves the
deliveries pending, and the sweep queues them again once their lease ends (at least once).

Retries are not Celery countdowns: `enqueue_due` (the `webhooks.sweep` task, every 5 s) queues
the deliveries that are due through the outbox, leasing each for `ENQUEUE_LEASE`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.clock import to_unix
from service.db import session_scope
from service.errors import InvalidRequest
from service.ids import new_id
from service.webhooks.events import render_event, sample_event
from service.webhooks.limits import UNLIMITED, EndpointLimiter, Lease
from service.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookEventRow,
)
from service.webhooks.queue import enqueue_attempts
from service.webhooks.schedule import ENQUEUE_LEASE, retry_delay
from service.webhooks.service import active_secrets
from service.webhooks.transport import BLOCKED, Outgoing, Sender, SendResult, send
from service.webhooks.urls import CheckedUrl, UrlGuard, UrlRejected

log = logging.getLogger(__name__)

DISABLE_AFTER = timedelta(days=5)  # of nothing but failures (Svix's rule)


@dataclass(frozen=True)
class Prepared:
    """A delivery's next attempt, decided: where it goes and what it sends, or why it is blocked.
    It is signed when it is sent (`outgoing`), so a batch's wait does not age its timestamp."""

    delivery_id: str
    endpoint_id: str
    attempts_before: int
    msg_id: str
    body: bytes
    secrets: tuple[str, ...]
    checked: CheckedUrl | None  # None: the destination is blocked

    def outgoing(self, now: datetime) -> Outgoing | None:
        if self.checked is None:
            return None
        return Outgoing.of(self.checked, msg_id=self.msg_id, body=self.body, secrets=self.secrets, now=now)


def _prepare(
    session: Session,
    delivery_id: str,
    *,
    guard: UrlGuard,
    now: datetime,
    checks: dict[str, CheckedUrl | UrlRejected] | None = None,
) -> Prepared | None:
    """The attempt to make, or None when there is none (unknown, finished, not due yet, or its
    endpoint disabled: then the delivery fails at once, kept for redelivery). `checks`: the URL
    checks already made in this batch (one resolution per URL and batch)."""
    delivery = session.get(WebhookDeliveryRow, delivery_id)
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
    body = render_event(event)
    check = _check(guard, endpoint.url, {} if checks is None else checks)
    checked = None if isinstance(check, UrlRejected) else check
    if isinstance(check, UrlRejected):
        log.warning("webhook destination blocked", extra={"delivery_id": delivery.id, "reason": check.reason})
    secrets = tuple(active_secrets(endpoint, now))
    return Prepared(delivery.id, endpoint.id, delivery.attempts, event.id, body, secrets, checked)


def _check(
    guard: UrlGuard, url: str, checks: dict[str, CheckedUrl | UrlRejected]
) -> CheckedUrl | UrlRejected:
    if url not in checks:
        try:
            checks[url] = guard.check(url)
        except UrlRejected as rejected:
            checks[url] = rejected
    return checks[url]


def _store(
    session: Session,
    prepared: Prepared,
    result: SendResult,
    *,
    now: datetime,
    rng: random.Random | None,
    locked: bool = False,
    retry_scale: float = 1.0,
) -> WebhookAttemptRow | None:
    """Log the attempt and move the delivery on; None (nothing stored) when another worker
    recorded an attempt of it meanwhile. `locked`: the rows are loaded, locked, already."""
    # `with_for_update=None` (not False) lets `get` find the locked rows in the session.
    lock = None if locked else True
    delivery = session.get(WebhookDeliveryRow, prepared.delivery_id, with_for_update=lock)
    endpoint = session.get(WebhookEndpointRow, prepared.endpoint_id, with_for_update=lock)
    if delivery is None or endpoint is None:
        return None
    if delivery.status != DeliveryStatus.PENDING or delivery.attempts != prepared.attempts_before:
        return None
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
    _record(delivery, endpoint, result, now=now, rng=rng, retry_scale=retry_scale)
    if not locked:
        session.flush()  # a batch flushes its attempts together, at its end
    return attempt


def _fail_pending(session: Session, endpoint_ids: Iterable[str]) -> None:
    """Endpoints now disabled: their pending deliveries fail now (kept for redelivery) rather
    than when each would next have been due, so the log says at once what an endpoint missed.
    Called once a transaction's attempts are recorded."""
    disabled = [
        endpoint.id
        for endpoint in (session.get(WebhookEndpointRow, i) for i in sorted(set(endpoint_ids)))
        if endpoint is not None and endpoint.status != EndpointStatus.ENABLED
    ]
    if not disabled:
        return
    session.execute(
        update(WebhookDeliveryRow)
        .where(
            WebhookDeliveryRow.endpoint_id.in_(disabled),
            WebhookDeliveryRow.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.FAILED, next_attempt_at=None, last_error="endpoint_disabled")
        .execution_options(synchronize_session=False)
    )


def deliver(
    session: Session,
    delivery_id: str,
    *,
    http: httpx.Client,
    guard: UrlGuard,
    now: datetime,
    rng: random.Random | None = None,
) -> WebhookAttemptRow | None:
    """Make the delivery's next attempt in `session`; returns its log row, or None when nothing
    was sent (unknown, already finished, not due yet, or its endpoint disabled). Idempotent."""
    prepared = _prepare(session, delivery_id, guard=guard, now=now)
    if prepared is None:
        return None
    outgoing = prepared.outgoing(now)
    result = BLOCKED if outgoing is None else send(http, outgoing, prepared.body, now=now)
    stored = _store(session, prepared, result, now=now, rng=rng)
    _fail_pending(session, [prepared.endpoint_id])
    return stored


@dataclass(frozen=True)
class BatchOutcome:
    attempted: int
    succeeded: int


def _load(session: Session, delivery_ids: Sequence[str], *, lock: bool) -> list[object]:
    """Load the deliveries with their endpoints (and, unlocked, their events) in one query each,
    locked in id order when `lock`. The caller keeps the returned rows while it works: the
    session holds loaded rows weakly, and the batch's `session.get` calls find them there only
    while they are referenced (otherwise each `get` is a query of its own)."""
    if not delivery_ids:
        return []
    query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.id.in_(delivery_ids))
    deliveries = list(
        session.scalars(query.order_by(WebhookDeliveryRow.id).with_for_update() if lock else query)
    )
    endpoint_ids = sorted({d.endpoint_id for d in deliveries})
    endpoints = select(WebhookEndpointRow).where(WebhookEndpointRow.id.in_(endpoint_ids))
    rows: list[object] = [*deliveries]
    rows.extend(
        session.scalars(endpoints.order_by(WebhookEndpointRow.id).with_for_update() if lock else endpoints)
    )
    if not lock:
        events = {d.event_id for d in deliveries}
        rows.extend(session.scalars(select(WebhookEventRow).where(WebhookEventRow.id.in_(events))))
    return rows


async def deliver_batch(
    sessions: sessionmaker[Session],
    delivery_ids: Sequence[str],
    *,
    sender: Sender,
    guard: UrlGuard,
    clock: Callable[[], datetime],
    concurrency: int = 100,
    per_endpoint: int = 8,
    limiter: EndpointLimiter | None = None,
    rng: random.Random | None = None,
    retry_scale: float = 1.0,
) -> BatchOutcome:
    """Make the next attempt of each delivery, the requests concurrently (at most `concurrency`
    in flight, `per_endpoint` to any one endpoint: in this process, and across every worker
    process when `limiter` is given), then record every outcome in one transaction."""
    now = clock()
    checks: dict[str, CheckedUrl | UrlRejected] = {}
    with session_scope(sessions) as session:
        loaded = _load(session, delivery_ids, lock=False)
        batch = [
            p
            for p in (_prepare(session, i, guard=guard, now=now, checks=checks) for i in delivery_ids)
            if p is not None
        ]
        del loaded
    if not batch:
        return BatchOutcome(0, 0)
    overall = asyncio.Semaphore(concurrency)
    queues: defaultdict[str, deque[Prepared]] = defaultdict(deque)
    results: list[tuple[Prepared, SendResult, datetime]] = []
    for prepared in batch:
        if prepared.checked is None:
            results.append((prepared, BLOCKED, clock()))
        else:
            queues[prepared.endpoint_id].append(prepared)
    shared = limiter if limiter is not None else UNLIMITED

    async def lane(queue: deque[Prepared], lease: Lease) -> None:
        while queue:
            prepared = queue.popleft()
            async with overall:
                await lease.keep()
                sent_at = clock()
                outgoing = prepared.outgoing(sent_at)
                assert outgoing is not None
                results.append((prepared, await sender.send(outgoing, prepared.body, now=sent_at), sent_at))

    async def serve(endpoint_id: str, queue: deque[Prepared]) -> None:
        async with shared.lease(endpoint_id, want=min(per_endpoint, len(queue)), cap=per_endpoint) as lease:
            await asyncio.gather(*(lane(queue, lease) for _ in range(lease.granted)))

    await asyncio.gather(*(serve(endpoint_id, queue) for endpoint_id, queue in queues.items()))
    stored = 0
    # The rows are locked in id order (deliveries, then endpoints): two workers' batches take
    # their locks in one order and never deadlock.
    with session_scope(sessions) as session:
        loaded = _load(session, [prepared.delivery_id for prepared, _, _ in results], lock=True)
        for prepared, result, sent_at in results:
            attempt = _store(
                session, prepared, result, now=sent_at, rng=rng, locked=True, retry_scale=retry_scale
            )
            stored += attempt is not None
        _fail_pending(session, [prepared.endpoint_id for prepared, _, _ in results])
        del loaded
    return BatchOutcome(stored, sum(1 for _, result, _ in results if result.ok))


def _record(
    delivery: WebhookDeliveryRow,
    endpoint: WebhookEndpointRow,
    result: SendResult,
    *,
    now: datetime,
    rng: random.Random | None,
    retry_scale: float = 1.0,
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
    delay = retry_delay(delivery.attempts, retry_after=result.retry_after, rng=rng, scale=retry_scale)
    if delay is None:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        log.warning("webhook delivery failed; attempts exhausted", extra=outcome)
        return
    delivery.next_attempt_at = now + delay
    log.info(
        "webhook attempt failed; will retry", extra={**outcome, "retry_in_s": int(delay.total_seconds())}
    )


def claim_due(session: Session, *, now: datetime, limit: int = 500) -> list[str]:
    """Lease up to `limit` pending deliveries that are due (oldest first) for `ENQUEUE_LEASE`, so
    that no other sweep or worker takes them meanwhile; returns their ids. A lease that runs out
    (the worker died) makes the delivery due again."""
    due = session.scalars(
        select(WebhookDeliveryRow.id)
        .where(WebhookDeliveryRow.status == DeliveryStatus.PENDING, WebhookDeliveryRow.next_attempt_at <= now)
        .order_by(WebhookDeliveryRow.next_attempt_at)
        .limit(limit)
    ).all()
    if not due:
        return []
    claimed = session.scalars(
        update(WebhookDeliveryRow)
        .where(
            WebhookDeliveryRow.id.in_(due),
            WebhookDeliveryRow.status == DeliveryStatus.PENDING,
            WebhookDeliveryRow.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + ENQUEUE_LEASE)
        .returning(WebhookDeliveryRow.id)
        .execution_options(synchronize_session=False)
    ).all()
    return list(claimed)


def enqueue_due(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Queue (via the outbox) every pending delivery that is due, leased so that a second sweep
    or a worker draining does not take it again; returns how many were queued."""
    claimed = claim_due(session, now=now, limit=limit)
    enqueue_attempts(session, claimed)
    return len(claimed)


async def drain(
    sessions: sessionmaker[Session],
    *,
    sender: Sender,
    guard: UrlGuard,
    clock: Callable[[], datetime],
    concurrency: int = 100,
    per_endpoint: int = 8,
    limiter: EndpointLimiter | None = None,
    batch_size: int = 200,
    budget_s: float = 60.0,
    retry_scale: float = 1.0,
) -> int:
    """Claim and deliver due deliveries a batch at a time until none is due or `budget_s` has
    passed; returns how many attempts were recorded. What a worker runs when an event is emitted."""
    deadline = time.monotonic() + budget_s
    attempted = 0
    while time.monotonic() < deadline:
        with session_scope(sessions) as session:
            claimed = claim_due(session, now=clock(), limit=batch_size)
        if not claimed:
            break
        outcome = await deliver_batch(
            sessions,
            claimed,
            sender=sender,
            guard=guard,
            clock=clock,
            concurrency=concurrency,
            per_endpoint=per_endpoint,
            limiter=limiter,
            retry_scale=retry_scale,
        )
        attempted += outcome.attempted
    return attempted


@dataclass(frozen=True)
class TestOutcome:
    status_code: int
    duration_ms: int


def send_test_event(
    endpoint: WebhookEndpointRow, event_type: str, *, http: httpx.Client, guard: UrlGuard, now: datetime
) -> TestOutcome:
    """Send a signed sample `event_type` event to the endpoint now, through the same checks and
    pinned connection as deliveries; returns the receiver's status and the time it took.
    400 naming `url` when the URL is blocked; 400 `webhook_test_failed` when there is no answer."""
    try:
        checked = guard.check(endpoint.url)
    except UrlRejected as rejected:
        raise InvalidRequest(rejected.message, param="url", code=rejected.reason) from rejected
    event_id, body = sample_event(event_type, created_at=to_unix(now) or 0)
    out = Outgoing.of(checked, msg_id=event_id, body=body, secrets=active_secrets(endpoint, now), now=now)
    result = send(http, out, body, now=now)
    if result.status_code is None:
        raise InvalidRequest(
            f"The test event could not be delivered ({result.error}).", code="webhook_test_failed"
        )
    return TestOutcome(result.status_code, result.duration_ms)
