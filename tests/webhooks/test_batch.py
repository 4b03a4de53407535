"""`deliver_batch`, what the workers run: many deliveries' attempts at once, a cap per endpoint so
that a slow receiver cannot take every slot, and outcomes recorded only after the requests (a
crash in between leaves the deliveries to be sent again)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import openai
import pytest
from sqlalchemy import select

from service.clock import utcnow
from service.db import session_scope
from service.runtime import Runtime
from service.webhooks import delivery as webhooks
from service.webhooks import transport
from service.webhooks.models import WebhookDeliveryRow
from service.webhooks.service import emit_event
from tests.webhooks.conftest import dev_guard, make_endpoint

SLOW = "http://127.0.0.1:9/slow"
FAST = "http://127.0.0.1:9/fast"


def _emit(runtime: Runtime, events: int) -> tuple[list[str], dict[str, str]]:
    """Two endpoints (slow, fast), `events` events for both: (delivery ids, secrets by path)."""
    with session_scope(runtime.sessions) as session:
        slow = make_endpoint(session, url=SLOW)
        fast = make_endpoint(session, url=FAST)
        for index in range(events):
            emit_event(
                session, tenant_id=slow.tenant_id, type="fine_tuning.job.succeeded", data_id=f"ftjob-{index}"
            )
        ids = list(
            session.scalars(select(WebhookDeliveryRow.id).order_by(WebhookDeliveryRow.endpoint_id != slow.id))
        )
        return ids, {"/slow": slow.secret, "/fast": fast.secret}


def test_a_slow_receiver_holds_only_its_share_while_the_others_are_served(
    runtime: Runtime, verifier: openai.OpenAI
) -> None:
    ids, secrets = _emit(runtime, events=6)
    fast_done = asyncio.Event()
    in_flight: Counter[str] = Counter()
    most: Counter[str] = Counter()
    served: Counter[str] = Counter()

    async def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        verifier.webhooks.verify_signature(request.content, dict(request.headers), secret=secrets[path])
        in_flight[path] += 1
        most[path] = max(most[path], in_flight[path])
        if path == "/slow":
            await fast_done.wait()  # answers only once every fast delivery got through
        served[path] += 1
        if served["/fast"] == 6:
            fast_done.set()
        in_flight[path] -= 1
        return httpx.Response(200)

    async def run() -> webhooks.BatchOutcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
            return await asyncio.wait_for(
                webhooks.deliver_batch(
                    runtime.sessions,
                    ids,
                    sender=transport.HttpxSender(http),
                    guard=dev_guard(),
                    clock=utcnow,
                    concurrency=4,
                    per_endpoint=2,
                ),
                timeout=30,
            )

    outcome = asyncio.run(run())

    assert outcome == webhooks.BatchOutcome(attempted=12, succeeded=12)
    assert most["/slow"] == 2
    assert served == Counter({"/slow": 6, "/fast": 6})
    with session_scope(runtime.sessions) as session:
        assert set(session.scalars(select(WebhookDeliveryRow.status))) == {"succeeded"}


def test_a_worker_dying_after_sending_leaves_the_deliveries_pending_and_the_sweep_sends_them_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, _ = _emit(runtime, events=2)
    sent: list[str] = []

    def died(*args: object, **kwargs: object) -> None:
        raise SystemExit("worker killed")

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["webhook-id"])
        return httpx.Response(200)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
            await webhooks.deliver_batch(
                runtime.sessions, ids, sender=transport.HttpxSender(http), guard=dev_guard(), clock=utcnow
            )

    monkeypatch.setattr(webhooks, "_store", died)
    with pytest.raises(SystemExit):
        asyncio.run(run())
    monkeypatch.undo()
    with session_scope(runtime.sessions) as session:
        statuses = set(session.scalars(select(WebhookDeliveryRow.status)))
        requeued = webhooks.enqueue_due(session, now=utcnow() + timedelta(minutes=3))

    assert len(sent) == 4
    assert statuses == {"pending"}
    assert requeued == 4


def test_drain_delivers_every_due_delivery_a_batch_at_a_time_and_leaves_later_ones(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, _ = _emit(runtime, events=5)
    with session_scope(runtime.sessions) as session:  # one of them is a retry due tomorrow
        later = session.get(WebhookDeliveryRow, ids[0])
        assert later is not None
        later.next_attempt_at = utcnow() + timedelta(days=1)
    batches: list[int] = []
    original = webhooks.deliver_batch

    async def counting(sessions: object, delivery_ids: list[str], **kwargs: object) -> webhooks.BatchOutcome:
        batches.append(len(delivery_ids))
        return await original(sessions, delivery_ids, **kwargs)  # type: ignore[arg-type]

    async def run() -> int:
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http:
            return await webhooks.drain(
                runtime.sessions,
                sender=transport.HttpxSender(http),
                guard=dev_guard(),
                clock=utcnow,
                batch_size=4,
            )

    monkeypatch.setattr(webhooks, "deliver_batch", counting)
    attempted = asyncio.run(run())

    assert attempted == 9
    assert batches == [4, 4, 1]
    with session_scope(runtime.sessions) as session:
        assert session.get(WebhookDeliveryRow, ids[0]).status == "pending"  # type: ignore[union-attr]
