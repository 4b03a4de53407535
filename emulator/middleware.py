"""The ASGI layer in front of every route: bearer auth, fault injection, request counting.

It is plain ASGI (not ``BaseHTTPMiddleware``) because dropping a connection means starting a
response and then failing it: uvicorn then closes the socket mid-response, which clients see as a
broken connection. In-process (Starlette's TestClient) the exception reaches the client itself,
so it is the very error an httpx client raises for a peer that hangs up, and the ``openai`` SDK
reports it as ``APIConnectionError`` either way.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Sequence

import httpx
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.clock import Clock
from emulator.error_handlers import error_response
from emulator.errors import AuthenticationFailed, RateLimited, ServerFault
from emulator.faults.state import FaultState

_GUARDED = ("/v1", "/_emulator")
_SERVER_MESSAGES = {
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
}


class ConnectionDropped(httpx.RemoteProtocolError):
    """Raised after a response has started so the server closes the connection (injected fault)."""


async def drop_connection(send: Send) -> None:
    """Start a response promising a body, then fail: the client never gets an answer."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
    raise ConnectionDropped("peer closed connection without sending complete message body (injected fault)")


def _caller(scope: Scope, api_keys: Sequence[str]) -> str | None:
    """Who is calling, as `/_emulator/callers` counts it: the key's last 4 characters and the
    OpenAI-Organization / OpenAI-Project headers sent (`…abcd org=… pro=…`); None when the
    bearer key is not one the emulator accepts."""
    token: str | None = None
    extra = ""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, given = value.decode("latin-1").partition(" ")
            token = given.strip() if scheme.lower() == "bearer" else None
        elif name in (b"openai-organization", b"openai-project"):
            extra += f" {name.decode().removeprefix('openai-')[:3]}={value.decode('latin-1')}"
    if token is None:
        return None
    matched = False
    for key in api_keys:  # compare with every key, so the time taken says nothing of which
        matched |= hmac.compare_digest(token.encode(), key.encode())
    return f"…{token[-4:]}{extra}" if matched else None


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the route serving ``scope`` (the raw path when none matches)."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", scope["path"]))
        if match is Match.PARTIAL and partial is None:
            partial = str(getattr(route, "path", scope["path"]))
    return partial or str(scope["path"])


class EmulatorMiddleware:
    """Auth for /v1 and /_emulator; faults, latency and statistics for /v1."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        faults: FaultState,
        api_keys: Sequence[str],
        routes: Sequence[BaseRoute],
        clock: Clock,
    ) -> None:
        self.app = app
        self.faults = faults
        self.api_keys = list(api_keys)
        self.routes = routes
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(_GUARDED):
            await self.app(scope, receive, send)
            return
        caller = _caller(scope, self.api_keys)
        if caller is None:
            refusal = AuthenticationFailed(
                "Incorrect API key provided. You can find your API key in your settings."
            )
            await error_response(refusal)(scope, receive, send)
            return
        if not path.startswith("/v1"):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        key = f"{method} {route_template(self.routes, scope)}"
        decision = self.faults.take(method, path, key.partition(" ")[2])
        if decision.latency_s:
            await self.clock.sleep(decision.latency_s)
        if decision.action == "rate_limit":
            retry = decision.retry_after_s
            header = str(int(retry)) if retry == int(retry) else f"{retry:g}"
            limited = RateLimited(
                "Rate limit reached for requests (injected by the local emulator). "
                f"Please try again in {retry:g}s.",
                headers={
                    "retry-after": header,
                    "retry-after-ms": str(math.ceil(retry * 1000)),
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{retry:g}s",
                },
            )
            await error_response(limited)(scope, receive, send)
            return
        if decision.action == "server_error":
            message = _SERVER_MESSAGES.get(decision.status, "The server had an error.")
            await error_response(ServerFault(message, status_code=decision.status))(scope, receive, send)
            return
        if decision.action == "drop_before":
            await drop_connection(send)
        if decision.action == "drop_after":

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            self.faults.count(key, caller)
            await drop_connection(send)
        await self.app(scope, receive, send)
        self.faults.count(key, caller)
