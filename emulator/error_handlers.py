"""How errors reach the client: every failure becomes an ``EmulatorError`` rendered by one function.

FastAPI's own failures are translated first: a request that fails validation becomes the
``InvalidRequest`` OpenAI would answer (naming the parameter as ``hyperparameters.n_epochs``),
an unknown URL a ``NotFound``. The middleware, which runs outside the app's exception handlers,
renders its errors with the same ``error_response``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from emulator.errors import EmulatorError, InvalidRequest, NotFound

_LOCATIONS = ("body", "query", "path", "header")
_TYPE_TAG = re.compile(r"^(int|float|str|bool|none|list\[.*|dict\[.*|literal\[.*|function-.*|.*\[.*\].*)$")


def error_response(error: EmulatorError) -> JSONResponse:
    """OpenAI's ``{"error": {...}}`` with the error's status and headers."""
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


def _param(loc: tuple[Any, ...]) -> str | None:
    """``("body", "hyperparameters", "n_epochs", "int")`` -> ``"hyperparameters.n_epochs"``."""
    parts: list[str] = []
    for item in loc[1:] if loc and loc[0] in _LOCATIONS else loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not _TYPE_TAG.match(str(item)):
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or None


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    """The first pydantic error, as OpenAI phrases a bad parameter."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "Invalid request", "type": ""}
    param = _param(tuple(first.get("loc", ())))
    if first.get("type") == "extra_forbidden":
        return InvalidRequest(f"Unrecognized request argument supplied: {param}", param=param)
    if first.get("type") == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if first.get("type") == "json_invalid":
        return InvalidRequest("We could not parse the JSON body of your request.", param=None)
    return InvalidRequest(f"Invalid value for '{param}': {first.get('msg')}.", param=param)


def install_error_handlers(app: FastAPI) -> None:
    """Render ``EmulatorError`` (and FastAPI's validation and routing errors, translated) in OpenAI's shape."""

    async def on_emulator_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EmulatorError)
        return error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await on_emulator_error(request, validation_error(exc))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return await on_emulator_error(
                request, NotFound(f"Invalid URL ({request.method} {request.url.path})")
            )
        return await on_emulator_error(request, InvalidRequest(str(exc.detail), status_code=exc.status_code))

    app.add_exception_handler(EmulatorError, on_emulator_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
