"""The API application factory: routers, error rendering, middleware, lifespan."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from service.auth.router import router as auth_router
from service.auth.service import Authenticator
from service.bootstrap import ensure_bootstrap_key
from service.cache_changes import Change, ChangeListener
from service.config import Settings, get_settings
from service.contract import ServiceApp
from service.deployments.router import router as deployments_router
from service.errors import ServiceError
from service.evals.router import router as evals_router
from service.files.router import router as files_router
from service.jobs.router import inbound_router as provider_webhooks_router
from service.jobs.router import router as jobs_router
from service.json_body import NOT_JSON
from service.limits.limiter import LimitMetrics, RateLimiter
from service.logs import configure_logging
from service.models.router import router as models_router
from service.ops.limits import DeclaredBodySizeMiddleware
from service.ops.middleware import ApiMetrics, RequestContextMiddleware
from service.ops.router import router as ops_router
from service.providers.credentials_cache import forget_credentials
from service.proxy.asgi import LeanProxy
from service.proxy.router import router as proxy_router
from service.proxy.routes import forget_route
from service.routing import allowed_methods
from service.runtime import Runtime
from service.uploads.router import parts_router as upload_parts_router
from service.uploads.router import router as uploads_router
from service.usage.metering import create_metering
from service.usage.router import router as usage_router
from service.webhooks.router import event_docs
from service.webhooks.router import router as webhooks_router

MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_PARTS_PATH = re.compile(r"/v1/uploads/[^/]+/parts")
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})

API_DESCRIPTION = """\
finetune-manager: an OpenAI-compatible control plane for fine-tuning. Point the official `openai`
SDK at `/v1` with an ftm API key. Errors use OpenAI's shape
`{"error": {"message", "type", "param", "code"}}`.
"""


def error_response(
    status_code: int,
    message: str,
    *,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status_code, headers=headers)


def _param_of(location: tuple[Any, ...]) -> str | None:
    """`("body", "integrations", 0, "type")` -> `integrations[0].type`, as `service.json_body` names fields."""
    param = ""
    for part in location[1:] if location and location[0] in _LOCATIONS else location:
        if isinstance(part, int):
            param += f"[{part}]"
        else:
            param += f".{part}" if param else str(part)
    return param or None


async def _service_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    if first.get("type") == "json_invalid":  # its location is an offset in the body, not a field
        return error_response(400, NOT_JSON, type_="invalid_request_error", code="invalid_json")
    param = _param_of(tuple(first.get("loc", ())))
    message = first.get("msg", "Invalid request.")
    if param:
        message = f"Invalid value for '{param}': {message}"
    return error_response(400, message, type_="invalid_request_error", param=param, code="invalid_value")


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope["path"]))
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    message = str(error.detail)
    if error.status_code == 413:
        message = "The request body is larger than this route accepts."
    return error_response(
        error.status_code,
        message,
        type_="invalid_request_error",
        code=codes.get(error.status_code),
        headers=headers,
    )


def _apply_change(app: FastAPI, change: Change) -> None:
    """Another API process (or this one) changed what the hot path caches: forget it here."""
    if change.key_id is not None:
        app.state.authenticator.forget_key(change.key_id)
    if change.tenant_id is not None and change.provider is not None:  # its own credentials there
        forget_credentials(app.state, tenant_id=change.tenant_id, provider=change.provider)
    elif change.tenant_id is not None and change.model is not None:
        forget_route(app.state, tenant_id=change.tenant_id, model=change.model)
    elif change.tenant_id is not None:  # the tenant itself changed (its limits)
        app.state.authenticator.forget_tenant(change.tenant_id)


class ApiApp(ServiceApp):
    """The API: the proxy's routes on their lean path (when it is on), the rest through FastAPI."""

    lean_proxy: LeanProxy | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean = self.lean_proxy
        if lean is not None and lean.serves(scope):
            await lean(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_bootstrap_key(settings, app.state.runtime.sessions)
        listener = app.state.change_listener = ChangeListener(
            app.state.runtime.redis, partial(_apply_change, app)
        )
        listener.start()
        app.state.usage.flusher.start()
        yield
        listener.stop()
        app.state.metrics.drain()  # the deferred samples and usage, before the last flush
        app.state.usage.flusher.stop()  # what is buffered is written before the process goes
        await app.state.limiter.aclose()
        await app.state.runtime.providers.aclose()
        if runtime is None:
            app.state.runtime.close()

    docs = settings.docs_enabled  # the interactive docs and their schema, off in prod by default
    app = ApiApp(
        title="finetune-manager",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.runtime = runtime or Runtime(settings)
    app.state.authenticator = Authenticator(app.state.runtime.sessions, settings.api_key_cache_ttl_s)
    app.state.metrics = ApiMetrics()
    app.state.usage = create_metering(settings, app.state.runtime.sessions, app.state.metrics.registry)
    app.state.metrics.before_scrape.append(app.state.usage.drain)
    app.state.limiter = RateLimiter(settings, LimitMetrics(app.state.metrics.registry))

    if settings.lean_proxy:
        app.lean_proxy = LeanProxy(app, body_limit=settings.max_json_body_bytes)

    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    upload_limit = settings.max_upload_bytes + MULTIPART_OVERHEAD
    part_limit = settings.uploads_max_part_bytes + MULTIPART_OVERHEAD
    app.add_middleware(
        DeclaredBodySizeMiddleware,
        json_limit=settings.max_json_body_bytes,
        upload_limits=((re.compile(r"/v1/files"), upload_limit), (UPLOAD_PARTS_PATH, part_limit)),
    )
    # Outermost of ours: it also logs and answers unhandled errors, inside the request's context.
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)

    # The proxy's routes first: every request walks the routers in order until one matches, and
    # inference is most of the traffic (no other router serves these paths).
    app.include_router(proxy_router, max_body_size=settings.max_json_body_bytes)
    app.include_router(ops_router)
    # Bodies are limited while they stream in (chunked ones too): JSON routes to
    # FTM_MAX_JSON_BODY_BYTES, uploads to FTM_MAX_UPLOAD_BYTES plus the multipart framing.
    app.include_router(files_router, max_body_size=upload_limit)
    app.include_router(upload_parts_router, max_body_size=part_limit)
    for router in (
        auth_router,
        uploads_router,
        jobs_router,
        provider_webhooks_router,
        models_router,
        deployments_router,
        evals_router,
        webhooks_router,
        usage_router,
    ):
        app.include_router(router, max_body_size=settings.max_json_body_bytes)
    app.webhooks.include_router(event_docs)  # the events endpoints receive, documented
    return app


def serve() -> FastAPI:
    """The app as `ftm api` serves it in each of its worker processes (uvicorn's factory): the
    process's settings, its JSON logging with secrets masked, and its startup heap frozen."""
    settings = get_settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Move every object alive now (the modules, classes and functions the app imported: ~300k
    objects in an API process) out of the cyclic garbage collector's sight, for good.

    They live as long as the process, but a full (generation 2) collection walks them all, and
    under load one runs every few seconds (requests in flight survive the young collections and
    pile up in the old generation): bench/proxy.py's 64 concurrent requests saw each worker stop
    for 100-260 ms each time, every request in flight with it, the p99 spikes at concurrency 64.
    Frozen, a full collection walks only what was made since (a few ms). Collected first, so no
    garbage of the startup is frozen with them."""
    gc.collect()
    gc.freeze()
