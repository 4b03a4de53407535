"""One delivery's attempts against `httpx.MockTransport` receivers."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import openai
import pytest
from openai.types.webhooks import FineTuningJobSucceededWebhookEvent

from service.clock import utcnow
from service.db import session_scope
from service.runtime import Runtime
from service.webhooks import delivery as webhooks
from service.webhooks.models import WebhookDeliveryRow, WebhookEndpointRow
from service.webhooks.schedule import MAX_ATTEMPTS, RETRY_DELAYS
from service.webhooks.service import emit_event
from service.webhooks.urls import UrlGuard
from tests.webhooks.conftest import dev_guard, make_endpoint, prod_guard

URL = "http://127.0.0.1:9/hooks"
Answer = Callable[[httpx.Request], httpx.Response]


class Receiver:
    """A MockTransport receiver that records requests and answers with `answer`."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def client(self, *, follow_redirects: bool = False) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self._handle), follow_redirects=follow_redirects)


@dataclass(frozen=True)
class State:
    """A delivery, its endpoint and its last attempt as seen after a `deliver` call."""

    sent: bool
    status: str
    attempts: int
    next_attempt_at: datetime | None
    attempt_status: int | None
    attempt_error: str | None
    endpoint_status: str


def emit(runtime: Runtime, *, url: str = URL) -> str:
    """An endpoint subscribed to `fine_tuning.job.succeeded` and one event for it; the delivery id."""
    with session_scope(runtime.sessions) as session:
        endpoint = make_endpoint(session, url=url)
        emit_event(session, tenant_id=endpoint.tenant_id, type="fine_tuning.job.succeeded", data_id="ftjob-1")
        delivery = session.query(WebhookDeliveryRow).one()
        return delivery.id


def deliver(
    runtime: Runtime,
    delivery_id: str,
    receiver: Receiver,
    *,
    now: datetime,
    guard: UrlGuard | None = None,
    follow_redirects: bool = False,
) -> State:
    with (
        receiver.client(follow_redirects=follow_redirects) as http,
        session_scope(runtime.sessions) as session,
    ):
        attempt = webhooks.deliver(
            session, delivery_id, http=http, guard=guard or dev_guard(), now=now, rng=random.Random(7)
        )
        row = session.get_one(WebhookDeliveryRow, delivery_id)
        endpoint = session.get_one(WebhookEndpointRow, row.endpoint_id)
        return State(
            sent=attempt is not None,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            attempt_status=attempt.status_code if attempt else None,
            attempt_error=attempt.error if attempt else None,
            endpoint_status=endpoint.status,
        )


def answering(status: int, headers: dict[str, str] | None = None) -> Answer:
    return lambda _: httpx.Response(status, headers=headers)


def test_a_2xx_answer_succeeds_with_a_delivery_the_sdk_verifies(
    runtime: Runtime, verifier: openai.OpenAI
) -> None:
    delivery_id = emit(runtime)
    receiver = Receiver(answering(204))

    state = deliver(runtime, delivery_id, receiver, now=utcnow())

    assert (state.status, state.attempts, state.attempt_status, state.next_attempt_at) == (
        "succeeded",
        1,
        204,
        None,
    )
    [request] = receiver.requests
    with session_scope(runtime.sessions) as session:
        secret = session.query(WebhookEndpointRow).one().secret
    event = verifier.webhooks.unwrap(request.content, dict(request.headers), secret=secret)
    assert isinstance(event, FineTuningJobSucceededWebhookEvent)
    assert (event.data.id, event.object) == ("ftjob-1", "event")
    assert request.headers["user-agent"] == "finetune-manager-webhooks/1.0"
    assert request.headers["content-type"] == "application/json"


def test_a_succeeded_delivery_is_not_sent_again(runtime: Runtime) -> None:
    delivery_id = emit(runtime)
    receiver = Receiver(answering(200))
    deliver(runtime, delivery_id, receiver, now=utcnow())

    again = deliver(runtime, delivery_id, receiver, now=utcnow() + timedelta(hours=1))

    assert (again.sent, len(receiver.requests)) == (False, 1)


def _fail_every_attempt(runtime: Runtime) -> tuple[list[timedelta], list[datetime], Receiver, State]:
    delivery_id = emit(runtime)
    receiver = Receiver(answering(500))
    now, gaps, times = utcnow(), [], []
    for _ in range(MAX_ATTEMPTS):
        state = deliver(runtime, delivery_id, receiver, now=now)
        times.append(now)
        if state.next_attempt_at is not None:
            gaps.append(state.next_attempt_at - now)
            now = state.next_attempt_at
    return gaps, times, receiver, state


def test_a_500_schedules_retries_by_the_standard_webhooks_schedule_with_the_same_id(runtime: Runtime) -> None:
    gaps, times, receiver, _ = _fail_every_attempt(runtime)

    assert len(gaps) == len(RETRY_DELAYS)
    for gap, scheduled in zip(gaps, RETRY_DELAYS, strict=True):
        assert scheduled * 0.8 <= gap <= scheduled * 1.2
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert [int(r.headers["webhook-timestamp"]) for r in receiver.requests] == [
        int(t.timestamp()) for t in times
    ]
    assert len({r.content for r in receiver.requests}) == 1


def test_after_the_last_attempt_the_delivery_is_failed_and_kept(runtime: Runtime) -> None:
    _, _, receiver, last = _fail_every_attempt(runtime)

    assert (last.status, last.attempts, last.next_attempt_at) == ("failed", MAX_ATTEMPTS, None)
    assert len(receiver.requests) == MAX_ATTEMPTS
    with session_scope(runtime.sessions) as session:
        assert session.query(WebhookDeliveryRow).count() == 1


def test_a_redirect_is_not_followed_and_counts_as_a_failure(runtime: Runtime) -> None:
    delivery_id = emit(runtime)
    receiver = Receiver(answering(302, {"Location": "http://127.0.0.1:9/elsewhere"}))
    now = utcnow()

    state = deliver(runtime, delivery_id, receiver, now=now, follow_redirects=True)

    assert [str(r.url) for r in receiver.requests] == [URL]
    assert (state.status, state.attempt_status, state.attempt_error) == (
        "pending",
        302,
        "redirect_not_followed",
    )
    assert state.next_attempt_at is not None
    assert state.next_attempt_at - now <= timedelta(seconds=6)


def test_410_gone_disables_the_endpoint_and_fails_the_delivery(runtime: Runtime) -> None:
    delivery_id = emit(runtime)

    state = deliver(runtime, delivery_id, Receiver(answering(410)), now=utcnow())

    assert (state.status, state.endpoint_status, state.next_attempt_at) == ("failed", "disabled", None)
    with session_scope(runtime.sessions) as session:
        endpoint = session.query(WebhookEndpointRow).one()
        emit_event(session, tenant_id=endpoint.tenant_id, type="fine_tuning.job.succeeded", data_id="ftjob-2")
        assert "410" in (endpoint.disabled_reason or "")
        assert session.query(WebhookDeliveryRow).count() == 1


def test_a_pending_delivery_of_a_disabled_endpoint_fails_without_being_sent(runtime: Runtime) -> None:
    delivery_id = emit(runtime)
    with session_scope(runtime.sessions) as session:
        session.query(WebhookEndpointRow).one().status = "disabled"
    receiver = Receiver(answering(200))

    state = deliver(runtime, delivery_id, receiver, now=utcnow())

    assert (state.sent, state.status, receiver.requests) == (False, "failed", [])


@pytest.mark.parametrize(
    ("retry_after", "wait"), [("3600", timedelta(hours=1)), ("999999", timedelta(hours=24))]
)
def test_a_longer_retry_after_is_honoured_up_to_a_day(
    runtime: Runtime, retry_after: str, wait: timedelta
) -> None:
    delivery_id = emit(runtime)
    now = utcnow()

    state = deliver(runtime, delivery_id, Receiver(answering(503, {"Retry-After": retry_after})), now=now)

    assert state.next_attempt_at == now + wait


def test_a_connection_error_is_a_failed_attempt_that_is_retried(runtime: Runtime) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    delivery_id = emit(runtime)

    state = deliver(runtime, delivery_id, Receiver(refuse), now=utcnow())

    assert (state.status, state.attempt_status) == ("pending", None)
    assert (state.attempt_error or "").startswith("connection_error")
    assert state.next_attempt_at is not None


def test_a_blocked_destination_is_a_failed_attempt_that_is_retried(runtime: Runtime) -> None:
    delivery_id = emit(runtime, url="https://hooks.example.com/x")
    receiver = Receiver(answering(200))
    rebound = prod_guard({"hooks.example.com": ["10.0.0.8"]})

    state = deliver(runtime, delivery_id, receiver, now=utcnow(), guard=rebound)

    assert (state.status, state.attempt_error, receiver.requests) == ("pending", "blocked_destination", [])
    assert state.next_attempt_at is not None


def test_a_duplicate_task_before_the_delivery_is_due_sends_nothing(runtime: Runtime) -> None:
    delivery_id = emit(runtime)
    receiver = Receiver(answering(500))
    now = utcnow()
    for _ in range(3):
        state = deliver(runtime, delivery_id, receiver, now=now)
        assert state.next_attempt_at is not None
        now = state.next_attempt_at

    duplicate = deliver(runtime, delivery_id, receiver, now=now - timedelta(minutes=20))

    assert (duplicate.sent, duplicate.attempts, len(receiver.requests)) == (False, 3, 3)


def test_the_body_is_the_thin_event_envelope(runtime: Runtime) -> None:
    delivery_id = emit(runtime)
    receiver = Receiver(answering(200))

    deliver(runtime, delivery_id, receiver, now=utcnow())

    body = json.loads(receiver.requests[0].content)
    assert set(body) == {"id", "object", "type", "created_at", "data"}
    assert (body["object"], body["type"], body["data"]) == (
        "event",
        "fine_tuning.job.succeeded",
        {"id": "ftjob-1"},
    )
    assert body["id"].startswith("evt_")
    assert body["id"] == receiver.requests[0].headers["webhook-id"]
