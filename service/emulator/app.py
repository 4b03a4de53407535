"""The emulator's FastAPI app: wiring, error rendering and the background progress task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import admin, files, inference, jobs, models_api
from .context import Emulator
from .errors import EmulatorError, InvalidRequest, NotFound
from .faults import FaultConfig, FaultState
from .lifecycle import JobEngine
from .middleware import EmulatorMiddleware
from .registry import ModelRegistry
from .settings import EmulatorSettings
from .store import Store
from .tokens import Tokenizers

logger = logging.getLogger(__name__)
_TYPE_TAG = re.compile(r"^(int|float|str|bool|none|list\[.*|dict\[.*|literal\[.*|function-.*|.*\[.*\].*)$")


def _param(loc: tuple[Any, ...]) -> str | None:
    """``("body", "hyperparameters", "n_epochs", "int")`` -> ``"hyperparameters.n_epochs"``."""
    parts: list[str] = []
    for item in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
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


def _render(error: EmulatorError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_emulator_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EmulatorError)
        return _render(exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _render(validation_error(exc))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return _render(NotFound(f"Invalid URL ({request.method} {request.url.path})"))
        return _render(InvalidRequest(str(exc.detail), status_code=exc.status_code))

    app.add_exception_handler(EmulatorError, on_emulator_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


async def _advance_forever(emulator: Emulator) -> None:
    while True:
        await asyncio.sleep(emulator.settings.tick_seconds)
        try:
            await run_in_threadpool(emulator.engine.advance_all)
        except Exception:  # keep ticking; the next request retries the same work and reports it
            logger.exception("advancing fine-tuning jobs failed")


def create_app(settings: EmulatorSettings | None = None) -> FastAPI:
    """A new emulator app with its own state under ``settings.data_dir``."""
    settings = settings or EmulatorSettings()
    store = Store(settings.data_dir)
    faults = FaultState(FaultConfig.from_settings(settings))
    tokenizers = Tokenizers()
    engine = JobEngine(store=store, tokenizers=tokenizers, clock=time.time)
    emulator = Emulator(
        settings=settings,
        store=store,
        faults=faults,
        tokenizers=tokenizers,
        engine=engine,
        registry=ModelRegistry(store, engine.runs),
        clock=time.time,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_advance_forever(emulator))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    app = FastAPI(
        title="finetune-manager local provider",
        description="An OpenAI-compatible emulator of files, fine-tuning, models and inference.",
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    routers = [module.router for module in (files, jobs, models_api, inference, admin)]
    for router in routers:
        app.include_router(router)
    _install_error_handlers(app)
    routes = [route for router in routers for route in router.routes]
    app.add_middleware(EmulatorMiddleware, faults=faults, api_key=settings.api_key, routes=routes)
    return app
