"""Webhook delivery: deliveries per second of one worker process (the `webhooks.deliver` task's
code: claim due deliveries, send them concurrently, record every outcome in SQLite) to a local
receiver in its own process, with the former client (httpx `AsyncClient`) and the workers' client
(aiohttp, `service.outbound.pinned`) in the same run; with the cross-process endpoint cap in Redis
too when `FTM_BENCH_REDIS_URL` is set (e.g. redis://127.0.0.1:6379/15). Then, with events emitted
at a steady `RATE` deliveries/s (the goal's rate, by a thread of the measured process: the figure
is conservative) while that worker drains, p50/p99 from an event being recorded to its first
attempt. For scale, each client's bare POST rate to the same receiver (no database, no signing)
is printed first: delivery cannot be faster than that on the machine at that moment.
Goal (issue 12): 500 deliveries/s, p99 under 1 s. About a minute."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from devtools.devstack import free_port
from service.auth import service as auth
from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.ids import new_id
from service.migrate import upgrade
from service.runtime import Runtime
from service.webhooks import delivery, transport
from service.webhooks.limits import EndpointLimiter, RedisEndpointLimiter, connect_async
from service.webhooks.models import WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow, WebhookEventRow
from service.webhooks.service import emit_event
from service.webhooks.signing import generate_secret
from service.webhooks.urls import guard_for

ENDPOINTS = 20
BURST = 4000  # deliveries made ready before the worker starts (throughput)
RATE = 500  # deliveries per second emitted while the worker drains (latency): the goal's rate
STEADY_S = 10
EVENT = "fine_tuning.job.succeeded"

SenderFactory = Callable[[int], contextlib.AbstractAsyncContextManager[transport.Sender]]


@contextlib.asynccontextmanager
async def httpx_sender(connections: int) -> AsyncIterator[transport.Sender]:
    async with transport.async_http_client(connections) as http:
        yield transport.HttpxSender(http)


@contextlib.asynccontextmanager
async def pinned_sender(connections: int) -> AsyncIterator[transport.Sender]:
    async with transport.pinned_client(connections) as client:
        yield transport.PinnedSender(client)


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        receiver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.webhook_receiver:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env={**os.environ},
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(f"http://127.0.0.1:{port}/")
            settings = Settings(_env_file=None, data_dir=Path(tmp), log_level="WARNING")
            upgrade(settings.database_url)
            runtime = Runtime(settings)
            tenant_id = _endpoints(runtime, f"http://127.0.0.1:{port}/hooks")
            bare = f"http://127.0.0.1:{port}/bare"
            asyncio.run(_bare_httpx(bare, settings.webhook_concurrency))
            asyncio.run(_bare_pinned(bare, settings.webhook_concurrency))
            redis_url = os.environ.get("FTM_BENCH_REDIS_URL")
            _throughput(runtime, settings, tenant_id, "httpx AsyncClient (before)", httpx_sender, None)
            _throughput(runtime, settings, tenant_id, "aiohttp PinnedClient (now)", pinned_sender, None)
            if redis_url:
                _throughput(
                    runtime, settings, tenant_id, "aiohttp + Redis endpoint cap", pinned_sender, redis_url
                )
            else:
                print(
                    "  (the cross-process endpoint cap: set FTM_BENCH_REDIS_URL, e.g. redis://127.0.0.1:6379/15)"
                )
            _steps(runtime, settings, tenant_id)
            _latency(runtime, settings, tenant_id, pinned_sender, redis_url)
        finally:
            receiver.terminate()
            receiver.wait(15)


def _wait(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the webhook receiver did not start")


async def _bare_httpx(url: str, concurrency: int, requests: int = 3000) -> None:
    slots = asyncio.Semaphore(concurrency)
    async with transport.async_http_client(concurrency) as http:

        async def one() -> None:
            async with slots:
                await http.post(url, content=b"{}")

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        elapsed = time.perf_counter() - started
    print(f"  bare POSTs/s, httpx AsyncClient               {requests / elapsed:8.0f}")


async def _bare_pinned(url: str, concurrency: int, requests: int = 3000) -> None:
    slots = asyncio.Semaphore(concurrency)
    async with transport.pinned_client(concurrency) as client:

        async def one() -> None:
            async with slots:
                await client.post(url, address="127.0.0.1", body=b"{}", headers={}, read_limit=1024)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        elapsed = time.perf_counter() - started
    print(f"  bare POSTs/s, aiohttp PinnedClient            {requests / elapsed:8.0f}")


def _endpoints(runtime: Runtime, url: str) -> str:
    with session_scope(runtime.sessions) as session:
        tenant = auth.get_or_create_tenant(session, "bench")
        now = utcnow()
        for index in range(ENDPOINTS):
            session.add(
                WebhookEndpointRow(
                    id=new_id("we_"),
                    tenant_id=tenant.id,
                    name=f"bench-{index}",
                    url=f"{url}/{index}",
                    event_types=[EVENT],
                    secret=generate_secret(),
                    status="enabled",
                    created_at=now,
                    updated_at=now,
                )
            )
        return tenant.id


def _emit(runtime: Runtime, tenant_id: str, events: int) -> None:
    with session_scope(runtime.sessions) as session:
        for index in range(events):
            emit_event(session, tenant_id=tenant_id, type=EVENT, data_id=f"ftjob-{index}")


async def _drain(
    runtime: Runtime,
    settings: Settings,
    senders: SenderFactory,
    redis_url: str | None,
    *,
    until_idle: bool,
    stop: threading.Event,
) -> int:
    done = 0
    redis = connect_async(redis_url) if redis_url else None
    limiter: EndpointLimiter | None = RedisEndpointLimiter(redis) if redis is not None else None
    try:
        async with senders(settings.webhook_concurrency) as sender:
            while True:
                attempted = await delivery.drain(
                    runtime.sessions,
                    sender=sender,
                    guard=guard_for(settings),
                    clock=utcnow,
                    concurrency=settings.webhook_concurrency,
                    per_endpoint=settings.webhook_endpoint_concurrency,
                    limiter=limiter,
                )
                done += attempted
                if until_idle or (stop.is_set() and attempted == 0):
                    return done
                if attempted == 0:
                    await asyncio.sleep(0.01)  # a worker woken by the next event's task
    finally:
        if redis is not None:
            await redis.aclose()


def _throughput(
    runtime: Runtime,
    settings: Settings,
    tenant_id: str,
    label: str,
    senders: SenderFactory,
    redis_url: str | None,
) -> None:
    _emit(runtime, tenant_id, BURST // ENDPOINTS)  # each event fans out to every endpoint
    started = time.perf_counter()
    cpu = time.process_time()
    attempted = asyncio.run(
        _drain(runtime, settings, senders, redis_url, until_idle=True, stop=threading.Event())
    )
    elapsed = time.perf_counter() - started
    cpu_ms = (time.process_time() - cpu) * 1000 / max(attempted, 1)
    print(
        f"  deliveries/s per process, {label:30} {attempted / elapsed:6.0f}"
        f"  ({attempted} in {elapsed:.1f} s, {cpu_ms:.2f} ms CPU each)"
    )


class _Timed:
    """Wraps functions of a module with a timer: where a batch's time goes, per delivery."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def wrap(self, owner: Any, name: str, label: str, *, when: Callable[..., bool] | None = None) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if when is not None and not when(*args, **kwargs):
                return original(*args, **kwargs)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, name, timed)


def _steps(runtime: Runtime, settings: Settings, tenant_id: str) -> None:
    """The aiohttp drain again, each step timed: claim, load, prepare (URL check, render), sign,
    store (lock the rows, record), commit; the rest is sending and the event loop."""
    timed = _Timed()
    saved = {name: getattr(delivery, name) for name in ("claim_due", "_load", "_prepare", "_store")}
    saved_of, saved_commit = transport.Outgoing.__dict__["of"], Session.commit
    timed.wrap(delivery, "claim_due", "claim (select + update ... returning)")
    timed.wrap(delivery, "_load", "load deliveries, endpoints, events", when=lambda *a, lock: not lock)
    timed.wrap(delivery, "_load", "lock the rows to store", when=lambda *a, lock: lock)
    timed.wrap(delivery, "_prepare", "prepare (due?, URL check, render)")
    timed.wrap(transport.Outgoing, "of", "sign (HMAC, headers)")
    timed.wrap(delivery, "_store", "store (attempt row, next state)")
    timed.wrap(Session, "commit", "commit (flush, one per transaction)")
    try:
        _emit(runtime, tenant_id, BURST // ENDPOINTS)
        started = time.perf_counter()
        attempted = asyncio.run(
            _drain(runtime, settings, pinned_sender, None, until_idle=True, stop=threading.Event())
        )
        elapsed = time.perf_counter() - started
    finally:
        for name, function in saved.items():
            setattr(delivery, name, function)
        transport.Outgoing.of = saved_of  # type: ignore[method-assign]  # the classmethod itself
        Session.commit = saved_commit  # type: ignore[method-assign]
    print(f"  where the time goes (aiohttp, {attempted} deliveries in {elapsed:.1f} s), per delivery:")
    for label, spent in timed.spent.items():
        print(f"    {label:40} {spent * 1e6 / attempted:7.0f} us")
    rest = elapsed - sum(timed.spent.values())
    print(f"    {'send, read the answer, event loop':40} {rest * 1e6 / attempted:7.0f} us")


def _latency(
    runtime: Runtime, settings: Settings, tenant_id: str, senders: SenderFactory, redis_url: str | None
) -> None:
    stop = threading.Event()
    started_at = utcnow()

    def produce() -> None:
        interval = ENDPOINTS / RATE  # one event, ENDPOINTS deliveries
        deadline = time.monotonic() + STEADY_S
        while time.monotonic() < deadline:
            tick = time.monotonic()
            _emit(runtime, tenant_id, 1)
            time.sleep(max(0.0, interval - (time.monotonic() - tick)))
        stop.set()

    producer = threading.Thread(target=produce)
    producer.start()
    asyncio.run(_drain(runtime, settings, senders, redis_url, until_idle=False, stop=stop))
    producer.join()
    waits = _first_attempt_waits(runtime, since=started_at)
    cuts = statistics.quantiles(waits, n=100)
    print(
        f"  event recorded -> first attempt  p50 {cuts[49] * 1000:6.0f} ms   p99 {cuts[98] * 1000:6.0f} ms"
        f"  ({len(waits)} deliveries at {RATE}/s, aiohttp{' + Redis cap' if redis_url else ''})"
    )


def _first_attempt_waits(runtime: Runtime, *, since: datetime) -> list[float]:
    with session_scope(runtime.sessions) as session:
        rows = session.execute(
            select(WebhookEventRow.created_at, WebhookAttemptRow.attempted_at)
            .join(WebhookDeliveryRow, WebhookDeliveryRow.event_id == WebhookEventRow.id)
            .join(WebhookAttemptRow, WebhookAttemptRow.delivery_id == WebhookDeliveryRow.id)
            .where(WebhookEventRow.created_at >= since)
        ).all()
    return [(attempted - created).total_seconds() for created, attempted in rows]
