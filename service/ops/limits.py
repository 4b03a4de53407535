"""Refuse a request whose declared body is over its route's limit before any of it is read, with
OpenAI's error shape. (Bodies without a Content-Length are counted as they stream in by the
routers' `max_body_size`; the app's error handler gives those the same shape.)"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send


def too_large_body(limit: int) -> bytes:
    message = f"The request body is larger than the limit of {limit} bytes."
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": "payload_too_large"}
    return json.dumps({"error": error}).encode()


class DeclaredBodySizeMiddleware:
    def __init__(
        self, app: ASGIApp, *, json_limit: int, upload_limits: Sequence[tuple[re.Pattern[str], int]]
    ) -> None:
        """`upload_limits`: the paths (matched whole) that take uploads, each with its limit; every
        other path takes JSON up to `json_limit`."""
        self.app = app
        self.json_limit = json_limit
        self.upload_limits = upload_limits

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.upload_limits:
            if pattern.fullmatch(path):
                return limit
        return self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = self.limit_for(scope["path"])
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > limit:
                    body = too_large_body(limit)
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
