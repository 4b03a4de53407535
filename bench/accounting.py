"""What usage accounting and rate limits add to one proxied request, part by part, in one run.

In process, no HTTP: each step the proxy takes for accounting, timed over many repetitions
(microseconds of CPU per request), beside a plain relay of the same stream for scale:

- recording a request: what the request pays (an append to the deferred batch) and what folding
  the batch into the buffer's sums and the Prometheus metrics costs per request, off its path;
- reading a JSON answer's usage; asking a stream for usage (the body splice);
- relaying a 20-chunk stream through the usage tap, hidden or not, against a bare relay;
- the limiter's decision with no limits configured, and with limits against a real Redis when
  `FTM_BENCH_REDIS_URL` is set (one round trip: the Lua script), per request;
- flushing 10,000 requests' sums into SQLite (off the request's path: the flusher's thread).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from service.auth.models import TenantRow
from service.auth.service import Principal
from service.config import Settings
from service.db import make_engine, make_session_factory, session_scope
from service.limits.limiter import LimitMetrics, RateLimiter
from service.migrate import upgrade
from service.usage.capture import UsageTap, ask_for_stream_usage, usage_from_json
from service.usage.flusher import UsageFlusher
from service.usage.metering import Metering, ProxyMetrics
from service.usage.records import UsageBuffer

MODEL = "ft:gpt-4o-mini-2024-07-18:acme:support:abc123"
CALLER = Principal("tenant_bench", "bench", "key_bench", frozenset({"inference"}))
USAGE = {"prompt_tokens": 31, "completion_tokens": 20, "total_tokens": 51}
ANSWER = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "word " * 60}, "finish_reason": "stop"}
        ],
        "usage": USAGE,
    }
).encode()
BODY = json.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "stream": True}
).encode()


def _event(body: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _stream(*, with_usage: bool) -> list[bytes]:
    chunks = []
    for index in range(20):
        body: dict[str, object] = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": MODEL,
            "choices": [{"index": 0, "delta": {"content": f"w{index} "}, "finish_reason": None}],
        }
        if with_usage:
            body["usage"] = None
        chunks.append(_event(body))
    if with_usage:
        chunks.append(_event({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}))
    return [*chunks, b"data: [DONE]\n\n"]


def _per_call_us(call: Callable[[], object], repeat: int) -> float:
    for _ in range(min(repeat, 1000)):
        call()
    started = time.process_time()
    for _ in range(repeat):
        call()
    return (time.process_time() - started) / repeat * 1e6


async def _source(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    async for _ in chunks:
        pass


def _stream_us(chunks: list[bytes], wrap: Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]) -> float:
    loop = asyncio.new_event_loop()
    try:
        return _per_call_us(lambda: loop.run_until_complete(_drain(wrap(_source(chunks)))), 3000)
    finally:
        loop.close()


def _limiter_us(settings: Settings, repeat: int) -> tuple[float, float]:
    """(wall, CPU) microseconds per decision."""

    async def many() -> tuple[float, float]:
        limiter = RateLimiter(settings, LimitMetrics(CollectorRegistry()))
        await limiter.admit(CALLER, 50)
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(repeat):
            await limiter.admit(CALLER, 50)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await limiter.aclose()
        return elapsed / repeat * 1e6, cpu / repeat * 1e6

    return asyncio.run(many())


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp))
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        with session_scope(make_session_factory(engine)) as session:
            session.add(TenantRow(id=CALLER.tenant_id, name=CALLER.tenant_name))
        flusher = UsageFlusher(
            UsageBuffer({}), make_session_factory(engine), interval_s=3600, batch_records=10**9
        )
        metering = Metering(flusher, ProxyMetrics(CollectorRegistry()))

        def record() -> None:
            meter = metering.start(CALLER)
            meter.answered_by(MODEL, "local")
            meter.finish(200, usage_from_json(ANSWER))

        async def deferred() -> tuple[float, float]:
            """On a loop, as the proxy runs: a request's share, and the batch's fold per record."""
            on_path = _per_call_us(record, 20_000)
            pending = len(metering.pending)
            started = time.process_time()
            metering.drain()
            return on_path, (time.process_time() - started) / max(1, pending) * 1e6

        on_path, folded = asyncio.run(deferred())
        print(f"record one request, on its path (deferred): {on_path:7.1f} us CPU")
        print(f"fold it into the buffer + metrics (batch) : {folded:7.1f} us CPU per request, off path")
        print(f"record one request, folded at once        : {_per_call_us(record, 20_000):7.1f} us CPU")
        print(
            f"usage of a JSON answer ({len(ANSWER)} bytes)     : {_per_call_us(lambda: usage_from_json(ANSWER), 50_000):7.1f} us CPU"
        )
        print(
            f"ask a stream for usage (splice)           : {_per_call_us(lambda: ask_for_stream_usage(BODY), 50_000):7.1f} us CPU"
        )

        bare = _stream_us(_stream(with_usage=False), lambda chunks: chunks)
        hidden = _stream_us(_stream(with_usage=True), lambda chunks: UsageTap(hide=True).relay(chunks))
        shown = _stream_us(_stream(with_usage=True), lambda chunks: UsageTap(hide=False).relay(chunks))
        print(f"relay 20 chunks, bare                     : {bare:7.1f} us CPU")
        print(f"relay 20 chunks + usage tap, hidden       : {hidden:7.1f} us CPU (+{hidden - bare:.1f})")
        print(f"relay 20 chunks + usage tap, as asked     : {shown:7.1f} us CPU (+{shown - bare:.1f})")

        wall, cpu = _limiter_us(settings, 20_000)
        print(f"limiter, no limits configured             : {cpu:7.1f} us CPU")
        redis_url = os.environ.get("FTM_BENCH_REDIS_URL")
        if redis_url:
            limited = settings.model_copy(
                update={
                    "redis_url": redis_url,
                    "key_requests_per_minute": 10**9,
                    "tenant_tokens_per_minute": 10**12,
                }
            )
            wall, cpu = _limiter_us(limited, 3000)
            print(f"limiter, 2 limits, one Redis round trip   : {cpu:7.1f} us CPU, {wall:.1f} us wall")
        else:
            print("limiter against Redis: set FTM_BENCH_REDIS_URL (e.g. redis://127.0.0.1:6379/11)")

        for _ in range(10_000):
            record()
        started = time.perf_counter()
        assert flusher.flush()
        print(
            f"flush 10,000 requests' sums (off path)    : {(time.perf_counter() - started) * 1000:7.1f} ms wall"
        )
        engine.dispose()
