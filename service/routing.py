"""The route class of every router of the API (`APIRouter(route_class=ServiceRoute)`).

A JSON request body is decoded by `service.json_body` (strict numbers: `NaN`, `Infinity` and numbers
beyond a float's range are a 400 naming the field), once, before FastAPI validates it; FastAPI then
reads the decoded body back from the request.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.params import Form
from fastapi.routing import APIRoute

from service import json_body

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class FiniteJsonRequest(Request):
    """A request whose `json()` is decoded by `json_body.loads`, once."""

    _decoded: Any

    async def json(self) -> Any:
        if not hasattr(self, "_decoded"):
            self._decoded = json_body.loads(await self.body())
        return self._decoded


def declares_json(request: Request) -> bool:
    """The body is JSON by its Content-Type, as FastAPI decides it (`application/json`, `*+json`)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


class ServiceRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if self.body_field is None or isinstance(self.body_field.field_info, Form):
            return handler

        async def decode_json_first(request: Request) -> Response:
            request = FiniteJsonRequest(request.scope, request.receive)
            if declares_json(request):
                try:
                    await request.json()
                except (ValueError, RecursionError):
                    pass  # malformed: FastAPI decodes it again and reports it as it does any body
            return await handler(request)

        return decode_json_first
