"""The floor `bench/proxy.py` compares the proxy with: a minimal relay, raw ASGI and one pooled
aiohttp session, no auth, no routing, nothing but forwarding the body and relaying the answer.

Served as the proxy is: `uvicorn bench.floor:app --workers N` (uvloop, httptools); the upstream
is `BENCH_UPSTREAM` (e.g. `http://127.0.0.1:9000/v1`).
"""

from __future__ import annotations

import os

import aiohttp
from starlette.types import Receive, Scope, Send

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9000/v1")
_session: list[aiohttp.ClientSession] = []  # made on the worker's event loop, on first request


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if not _session:
        _session.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)))
    async with _session[0].post(
        UPSTREAM + scope["path"].removeprefix("/v1"),
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-bench"},
    ) as upstream:
        media_type = upstream.headers.get("Content-Type", "application/json")
        headers = [(b"content-type", media_type.encode())]
        if not media_type.startswith("text/event-stream"):
            content = await upstream.read()
            headers.append((b"content-length", str(len(content)).encode()))
            await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
            await send({"type": "http.response.body", "body": content})
            return
        await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        async for chunk in upstream.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
