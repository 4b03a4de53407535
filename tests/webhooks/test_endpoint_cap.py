"""The per-endpoint cap across worker processes: two workers' batches (each with its own
in-process cap and its own Redis client, as two processes have) to one slow receiver keep at most
`per_endpoint` requests in flight between them; slots of a worker that died lapse; Redis down
leaves each worker its own cap and delivery going."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import fakeredis
import httpx
import redis.asyncio
from sqlalchemy import select

from service.clock import utcnow
from service.db import session_scope
from service.runtime import Runtime
from service.webhooks import delivery as webhooks
from service.webhooks import transport
from service.webhooks.limits import KEY, RedisEndpointLimiter
from service.webhooks.models import WebhookDeliveryRow
from service.webhooks.service import emit_event
from tests.webhooks.conftest import dev_guard, make_endpoint

SLOW = "http://127.0.0.1:9/slow"


def _redis_factory() -> Callable[[], redis.asyncio.Redis]:
    """Clients of one Redis, one per simulated process: the CI server, or one fake server."""
    url = os.environ.get("FTM_TEST_REDIS_URL")
    if url:
        return lambda: redis.asyncio.Redis.from_url(url)
    server = fakeredis.FakeServer()
    return lambda: fakeredis.FakeAsyncRedis(server=server)


def _deliveries(runtime: Runtime, events: int) -> tuple[str, list[str]]:
    with session_scope(runtime.sessions) as session:
        endpoint = make_endpoint(session, url=SLOW)
        for index in range(events):
            emit_event(
                session,
                tenant_id=endpoint.tenant_id,
                type="fine_tuning.job.succeeded",
                data_id=f"ftjob-{index}",
            )
        return endpoint.id, list(
            session.scalars(select(WebhookDeliveryRow.id).order_by(WebhookDeliveryRow.id))
        )


class SlowReceiver:
    """Answers after a pause, counting the requests in flight (all in this event loop)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.served = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.02)
        self.in_flight -= 1
        self.served += 1
        return httpx.Response(200)


async def _worker(runtime: Runtime, ids: list[str], handler: Any, limiter: RedisEndpointLimiter) -> int:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        outcome = await webhooks.deliver_batch(
            runtime.sessions,
            ids,
            sender=transport.HttpxSender(http),
            guard=dev_guard(),
            clock=utcnow,
            per_endpoint=2,
            limiter=limiter,
        )
    return outcome.succeeded


def test_two_workers_keep_the_endpoint_cap_between_them(runtime: Runtime) -> None:
    _, ids = _deliveries(runtime, events=12)
    receiver = SlowReceiver()
    clients = _redis_factory()

    async def run() -> list[int]:
        first, second = clients(), clients()
        try:
            return list(
                await asyncio.gather(
                    _worker(runtime, ids[:6], receiver, RedisEndpointLimiter(first)),
                    _worker(runtime, ids[6:], receiver, RedisEndpointLimiter(second)),
                )
            )
        finally:
            await first.aclose()
            await second.aclose()

    succeeded = asyncio.run(run())

    assert succeeded == [6, 6]
    assert receiver.most == 2  # not 2 per worker
    with session_scope(runtime.sessions) as session:
        assert set(session.scalars(select(WebhookDeliveryRow.status))) == {"succeeded"}


def test_slots_held_by_a_worker_that_died_lapse_and_delivery_goes_on(runtime: Runtime) -> None:
    endpoint_id, ids = _deliveries(runtime, events=3)
    receiver = SlowReceiver()
    clients = _redis_factory()

    async def run() -> int:
        client = clients()
        try:
            lapsed = int(time.time() * 1000) - 1  # a dead worker's two slots, their lease run out
            await client.zadd(KEY.format(endpoint_id=endpoint_id), {"dead:1": lapsed, "dead:2": lapsed})
            return await asyncio.wait_for(_worker(runtime, ids, receiver, RedisEndpointLimiter(client)), 30)
        finally:
            await client.aclose()

    assert asyncio.run(run()) == 3
    assert receiver.most == 2


def test_redis_down_leaves_each_worker_its_own_cap_and_delivers(runtime: Runtime) -> None:
    _, ids = _deliveries(runtime, events=6)
    receiver = SlowReceiver()

    async def run() -> int:
        down = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        try:
            return await _worker(runtime, ids, receiver, RedisEndpointLimiter(down))
        finally:
            await down.aclose()

    assert asyncio.run(run()) == 6
    assert receiver.most == 2
