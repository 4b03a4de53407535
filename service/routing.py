"""The route class of every router of the API (`APIRouter(route_class=ServiceRoute)`).

- A JSON request body is decoded by `service.json_body` (strict numbers: `NaN`, `Infinity` and
  numbers beyond a float's range are a 400 naming the field; no NUL in text), once, before FastAPI
  validates it; FastAPI then reads the decoded body back from the request.
- A path or query parameter holding NUL is a 400 naming it.
- The route documents the errors that what it depends on makes possible (`service.contract`), on
  top of the `responses=` it declares itself.

`allowed_methods` answers a 405's `Allow` for every route of a path, not only the first one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute, iter_route_contexts

from service import contract, json_body

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class FiniteJsonRequest(Request):
    """A request whose `json()` is decoded by `json_body.loads`, once."""

    _decoded: Any

    async def json(self) -> Any:
        if not hasattr(self, "_decoded"):
            raw = await self.body()
            decoded = json_body.loads(raw)
            json_body.refuse_nul(raw, decoded)  # every field of these bodies may reach the database
            self._decoded = decoded
        return self._decoded


def refuse_nul_parameters(request: Request) -> None:
    """A path or query parameter holding NUL is a 400 naming it (no SQL text column stores NUL)."""
    parameters = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in parameters:
        if "\x00" in str(value):
            raise json_body.text_with_nul(name)


def declares_json(request: Request) -> bool:
    """The body is JSON by its Content-Type, as FastAPI decides it (`application/json`, `*+json`)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


class ServiceRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        statuses = contract.inferred_statuses(self)
        # A route's own `responses=` win: they describe its errors more precisely.
        self.responses = {
            **contract.errors(*sorted(statuses), **contract.inferred_descriptions(self)),
            **self.responses,
        }
        if 401 in statuses:
            security: dict[str, Any] = {"security": [{contract.SECURITY_SCHEME: []}]}
            self.openapi_extra = {**security, **(self.openapi_extra or {})}

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if self.body_field is None or contract.is_form(self):

            async def check_parameters(request: Request) -> Response:
                refuse_nul_parameters(request)
                return await handler(request)

            return check_parameters

        async def decode_json_first(request: Request) -> Response:
            refuse_nul_parameters(request)
            request = FiniteJsonRequest(request.scope, request.receive)
            if declares_json(request):
                try:
                    await request.json()
                except (ValueError, RecursionError):
                    pass  # malformed: FastAPI decodes it again and reports it as it does any body
            return await handler(request)

        return decode_json_first


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of `app` serves at `path` (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        regex = getattr(route, "path_regex", None)
        if route.methods and regex is not None and regex.match(path):
            methods |= route.methods
    return sorted(methods)
