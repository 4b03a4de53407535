"""The lean path of the inference proxy: `POST /v1/chat/completions`, `/v1/completions` and
`/v1/embeddings` served straight from ASGI, in front of FastAPI.

Nearly every request the API gets is one of these, and its own work (a cached key, a cached route,
one Redis call, the relay) costs less than FastAPI's routing, dependency solving and the generic
middlewares around it. So `LeanProxy` answers them itself and hands everything else (other paths,
other methods, lifespan) to the app, doing what those layers would have done for these routes:

- the request id (`X-Request-Id`, kept if the caller sent a valid one) and the logging context;
- the declared and the streamed body size limit (413);
- the API key (401), its `inference` scope (403);
- OpenAI's error shape for every `ServiceError`, and a logged 500 for anything unexpected;
- the HTTP metrics (`ftm_http_requests_total`, `ftm_http_request_duration_seconds`, labelled with
  the route template as FastAPI's routes are), counted off the request's path in batches
  (`service.batching`), and the access log line.

Answers go out as raw ASGI messages: a JSON one in two, a stream chunk by chunk as the provider
sends it (watching for the client leaving, and always closing the upstream). `FTM_LEAN_PROXY=false` sends these
requests through FastAPI's routes instead, which remain registered for the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from random import getrandbits
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from service.auth.keys import Scope as KeyScope
from service.auth.service import Authenticator, Principal
from service.batching import LoopBatch
from service.errors import AuthenticationFailed, PermissionDenied, ServiceError
from service.logs import request_id_var
from service.ops.limits import too_large_body
from service.ops.middleware import SERVER_ERROR_MESSAGE, ApiMetrics, request_id_of
from service.proxy.handling import ProxyAnswer, ProxyStream, proxy

PATHS = {
    "/v1/chat/completions": "/chat/completions",
    "/v1/completions": "/completions",
    "/v1/embeddings": "/embeddings",
}
log = logging.getLogger("ftm.access")
error_log = logging.getLogger("ftm.errors")
_JSON = b"application/json"
SAMPLES_FOLD_S = 0.05  # how late a request reaches the HTTP metrics, at most
_NEEDS_SCOPE = f"This API key lacks the '{KeyScope.INFERENCE}' scope this route needs."


class RawHeaders(Mapping[str, str]):
    """The request's headers as a read-only mapping by lower-case name, decoded only when asked
    for (a deployment's sticky header is the only one looked up by name)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        value: str | None = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:  # Mapping's, without its try/except
        wanted = name.lower().encode("latin-1")
        for key, value in self._raw:
            if key == wanted:
                return value.decode("latin-1")
        return default

    def __iter__(self) -> Iterator[str]:
        return (key.decode("latin-1") for key, _ in self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class LeanProxy:
    """Serves the proxy's routes of `app` (a FastAPI app: its state holds the runtime,
    authenticator, metering, limiter and metrics); `app` serves every other request."""

    def __init__(self, app: Any, *, body_limit: int) -> None:
        self.app = app
        self.state = app.state
        self.body_limit = body_limit
        self.metrics: ApiMetrics = app.state.metrics
        self._counters: dict[tuple[str, int], Any] = {}
        self._latencies = {route: self.metrics.latency.labels("POST", route) for route in PATHS}
        self._samples: LoopBatch[tuple[str, int, float]] = LoopBatch(self._observe, delay_s=SAMPLES_FOLD_S)
        self.metrics.before_scrape.append(self._samples.drain)

    def serves(self, scope: Scope) -> bool:
        return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: str = scope["path"]
        authorization = declared = incoming = b""
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        for name, value in raw_headers:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                declared = value
            elif name == b"x-request-id":
                incoming = value
        request_id = request_id_of(incoming) if incoming else _new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        responding = False
        id_header = (b"x-request-id", request_id.encode())
        try:
            try:
                if declared.isdigit() and int(declared) > self.body_limit:
                    status = 413
                    await _send_json(send, 413, too_large_body(self.body_limit), [id_header])
                    return
                caller = await self._caller(authorization)
                answer = await proxy(
                    self.state, caller, PATHS[route], await _body(receive), RawHeaders(raw_headers)
                )
            except ServiceError as error:
                status = error.status_code
                body = json.dumps(error.body(), ensure_ascii=False, separators=(",", ":")).encode()
                await _send_json(send, status, body, [*_encoded(error.headers), id_header])
                return
            except _Disconnected:
                status = 499  # the client went away before its request was read: no answer
                return
            status, responding = answer.status, True
            await self._answer(answer, receive, send, id_header)
        except Exception:
            error_log.exception("unhandled error")
            if responding:  # the answer may have begun: too late for a 500
                raise
            status = 500
            body = json.dumps(ServiceError(SERVER_ERROR_MESSAGE).body()).encode()
            await _send_json(send, 500, body, [id_header])
        finally:
            elapsed = time.perf_counter() - started
            self._samples.add((route, status, elapsed))
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s",
                    "POST",
                    route,
                    status,
                    extra={"status": status, "duration_ms": round(elapsed * 1000, 2), "route": route},
                )
            request_id_var.reset(token)

    async def _caller(self, authorization: bytes) -> Principal:
        scheme, _, key = authorization.decode("latin-1").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                code="missing_api_key",
            )
        authenticator: Authenticator = self.state.authenticator
        principal = authenticator.cached(key) or await authenticator.check(key)
        if not principal.has(KeyScope.INFERENCE):
            raise PermissionDenied(_NEEDS_SCOPE)
        return principal

    async def _answer(
        self, answer: ProxyAnswer, receive: Receive, send: Send, id_header: tuple[bytes, bytes]
    ) -> None:
        try:
            headers = _encoded(answer.headers)
            headers.append(id_header)
            if answer.stream is not None:
                headers.append((b"content-type", answer.media_type.encode("latin-1")))
                await _relay_stream(answer.status, answer.stream, headers, receive, send)
                return
            media_type = answer.media_type.encode("latin-1")
            await _send_json(send, answer.status, answer.content, headers, media_type)
        finally:
            answer.sent()  # the metering, once the answer is out (or the stream over)

    def _observe(self, samples: list[tuple[str, int, float]]) -> None:
        """Count a batch of requests: one increment per (route, status), a latency sample each."""
        counts: dict[tuple[str, int], int] = {}
        latencies = self._latencies
        for route, status, elapsed in samples:
            counts[(route, status)] = counts.get((route, status), 0) + 1
            latencies[route].observe(elapsed)
        for (route, status), count in counts.items():
            counter = self._counters.get((route, status))
            if counter is None:
                counter = self._counters[(route, status)] = self.metrics.requests.labels(
                    "POST", route, str(status)
                )
            counter.inc(count)


async def _relay_stream(
    status: int,
    stream: ProxyStream,
    headers: list[tuple[bytes, bytes]],
    receive: Receive,
    send: Send,
) -> None:
    """Send the upstream's chunks as they come, each through `tap` (the usage read, and taken out
    if the caller did not ask for it), stopping when the client goes away (the server tells by
    `http.disconnect`: one waiting task, which cancels the relay), and close the upstream however
    it ends, releasing the provider connection. One loop, no generator between the provider's
    reads and the server's writes."""
    upstream, tap = stream
    assert upstream.chunks is not None
    relay = asyncio.current_task()
    assert relay is not None
    relaying = True
    gone = False

    def on_message(waiter: asyncio.Future[Message]) -> None:
        nonlocal gone
        if relaying and not waiter.cancelled() and waiter.exception() is None:
            gone = waiter.result()["type"] == "http.disconnect"
            if gone:
                relay.cancel()

    waiter = asyncio.ensure_future(receive())
    waiter.add_done_callback(on_message)
    feed = tap.feed
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        async for chunk in upstream.chunks:
            chunk = feed(chunk)
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": tap.end()})
    except asyncio.CancelledError:
        if not gone:
            raise
        relay.uncancel()  # the client left: the relay ends here, the request is done
    finally:
        relaying = False
        waiter.cancel()
        if upstream.close is not None:
            upstream.close()


class _Disconnected(Exception):
    """The client went away while its request body was arriving."""


async def _body(receive: Receive) -> bytes | AsyncIterator[bytes]:
    """The request's body: its bytes when the server has it in one message (a small body
    mostly is), else its chunks as they come."""
    message: Message = await receive()
    if message["type"] == "http.disconnect":
        raise _Disconnected
    if not message.get("more_body", False):
        whole: bytes = message.get("body", b"")
        return whole
    return _chunks(message, receive)


async def _chunks(first: Message, receive: Receive) -> AsyncIterator[bytes]:
    message = first
    while True:
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected


def _new_request_id() -> str:
    """A request's id when the caller sent none: `req_` and 128 random bits in hex, as the
    middleware's (`uuid4().hex`) look. An id names a request, it guards nothing, so the bits come
    from `random` (no system call), not from the operating system's generator."""
    return f"req_{getrandbits(128):032x}"


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    names = _NAMES
    return [(names.get(name) or _name(name), value.encode("latin-1")) for name, value in headers.items()]


_NAMES: dict[str, bytes] = {}  # a header's name as sent: the same dozen names on every answer


def _name(name: str) -> bytes:
    encoded = name.lower().encode("latin-1")
    if len(_NAMES) < 1024:
        _NAMES[name] = encoded
    return encoded


async def _send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], media_type: bytes = _JSON
) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"content-type", media_type))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
