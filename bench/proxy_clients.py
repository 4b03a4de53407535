"""Which HTTP client the proxy relays with: the candidates side by side against the fast fake
upstream (`bench/upstream.py`), in one uvloop process, one after the other.

- http1: `service/providers/http1.Pool`, asyncio transports and httptools' parser, a pool of up
  to 512 connections (what `service/providers/relay.py` uses);
- aiohttp: one `ClientSession`, a pool of up to 512 connections;
- httpx2 tuned: an `AsyncClient` with a pool as large (max and keep-alive connections 512);
- the SDK: `openai.AsyncOpenAI(...).post(cast_to=httpx2.Response)`, how the proxy relayed before.

For concurrency 1 and 64, JSON and a 20-chunk stream read to its end: requests/s and the client
process's CPU milliseconds per request.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx2
import openai
import uvloop

from bench.proxy import _wait_for_port
from devtools.devstack import free_port
from service.providers import http1

DURATION_S = 2.0
BODY = {"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": "Say hello."}]}
Send = Callable[[bool], Awaitable[None]]


async def _drive(send: Send, *, concurrency: int, stream: bool) -> tuple[float, float]:
    """(requests/s, CPU ms per request) of `send` kept busy by `concurrency` callers."""
    for _ in range(50):
        await send(stream)
    done = 0
    deadline = time.perf_counter() + DURATION_S

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await send(stream)
            done += 1

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return done / elapsed, cpu * 1000 / max(done, 1)


async def _measure(base_url: str) -> list[tuple[str, int, bool, float, float]]:
    content = json.dumps(BODY).encode()
    stream_content = json.dumps({**BODY, "stream": True}).encode()
    url = f"{base_url}/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    rows = []

    pool = http1.Pool(base_url, headers=headers, timeout_s=30, max_connections=512)

    async def with_http1(stream: bool) -> None:
        response = await pool.post("/chat/completions", stream_content if stream else content)
        while await response.readany():
            pass

    rows += await _all("http1", with_http1)
    await pool.aclose()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512), headers=headers) as session:

        async def with_aiohttp(stream: bool) -> None:
            async with session.post(url, data=stream_content if stream else content) as response:
                async for _ in response.content.iter_any():
                    pass

        rows += await _all("aiohttp", with_aiohttp)

    limits = httpx2.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx2.AsyncClient(limits=limits, headers=headers) as client:

        async def with_httpx2(stream: bool) -> None:
            body = stream_content if stream else content
            async with client.stream("POST", url, content=body) as response:
                async for _ in response.aiter_bytes():
                    pass

        rows += await _all("httpx2 (pool 512)", with_httpx2)

    sdk = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)

    async def with_sdk(stream: bool) -> None:
        body = stream_content if stream else content
        response = await sdk.post("/chat/completions", cast_to=httpx2.Response, content=body, stream=stream)
        async for _ in response.aiter_bytes():
            pass
        await response.aclose()

    rows += await _all("openai SDK client", with_sdk)
    await sdk.close()
    return rows


async def _all(name: str, send: Send) -> list[tuple[str, int, bool, float, float]]:
    rows = []
    for stream in (False, True):
        for concurrency in (1, 64):
            rate, cpu = await _drive(send, concurrency=concurrency, stream=stream)
            rows.append((name, concurrency, stream, rate, cpu))
    return rows


def run() -> None:
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "bench.upstream", str(port)])
    try:
        _wait_for_port(port, upstream)
        rows = uvloop.run(_measure(f"http://127.0.0.1:{port}/v1"))
    finally:
        upstream.terminate()
        upstream.wait(15)
    print("| client | mode | c | req/s | client CPU ms/req |")
    print("|---|---|---|---|---|")
    for name, concurrency, stream, rate, cpu in rows:
        mode = "stream" if stream else "json"
        print(f"| {name} | {mode} | {concurrency} | {rate:,.0f} | {cpu:.2f} |")
