"""One pure-ASGI middleware for every request: request id, access log line, metrics, and the
answer to an unhandled error.

Pure ASGI (not `BaseHTTPMiddleware`) so that streamed responses pass through untouched and the
proxy's hot path pays as little as possible.

An unhandled error is logged and answered here, while the request id is still set: Starlette's
`ServerErrorMiddleware` (where an app-level `Exception` handler runs) sits outside every user
middleware, so it would log after this request's context is gone and send a response that
bypasses the `X-Request-Id` header.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError
from service.logs import request_id_var

log = logging.getLogger("ftm.access")
error_log = logging.getLogger("ftm.errors")
SERVER_ERROR_MESSAGE = "The server had an error while processing your request."
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ApiMetrics:
    """The API's Prometheus metrics, in a registry of the app's own. Samples the proxy defers
    (`service.batching`) are folded in by the `before_scrape` callbacks, run on the event loop
    before each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.before_scrape: list[Callable[[], None]] = []
        self.requests = Counter(
            "ftm_http_requests_total",
            "HTTP requests handled, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ftm_http_request_duration_seconds",
            "Time until the response ended, by method and route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def drain(self) -> None:
        """Fold the deferred samples in now (on the event loop's thread)."""
        for fold in self.before_scrape:
            fold()


def request_id_of(incoming: bytes) -> str:
    """The request's id: the caller's `X-Request-Id` when it is a sensible one, else a new id."""
    text = incoming.decode("latin-1")
    return text if _VALID_REQUEST_ID.match(text) else f"req_{uuid.uuid4().hex}"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(dict(scope["headers"]).get(b"x-request-id", b""))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception("unhandled error")
            if response_started:
                raise  # too late for a 500: the server drops the connection
            await _send_server_error(send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "<unmatched>")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(elapsed)
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={"status": status, "duration_ms": round(elapsed * 1000, 2), "route": route},
            )
            request_id_var.reset(token)


async def _send_server_error(send: Send) -> None:
    body = json.dumps(ServiceError(SERVER_ERROR_MESSAGE).body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
