"""`/v1/chat/completions`, `/v1/completions` and `/v1/embeddings`: the inference proxy.

Each request is checked (a JSON object with a `model`), routed for the caller's tenant from an
in-memory route cache, and relayed to the model's provider with the provider's credentials. The
body is forwarded as written apart from `model`; the answer (JSON, or an SSE stream relayed as it
arrives) comes back with the provider's status.

A `model` naming a deployment picks one of its arms (by weight, or by the sticky key), and when
that arm's provider fails (5xx, unreachable, timed out, 429) tries the deployment's fallbacks in
order. Every attempt's failure arrives before any byte goes to the caller (a stream's status comes
first), so falling back never mixes two answers; a stream that breaks off midway is not retried.
Every answer names the model that answered, the deployment and its version (`X-FTM-*` headers).

Every request is counted (`service.usage`: tokens from the provider's usage, a stream's included,
recorded off the request's path) and held to the caller's per-minute limits (`service.limits`:
one Redis round trip before routing; a refusal is OpenAI's 429, an answer carries `x-ratelimit-*`).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service.auth.service import Principal
from service.contract import ErrorResponse, errors
from service.deployments.routing import DeploymentRoute
from service.deps import InferenceCaller, get_runtime
from service.errors import InvalidRequest, ProviderError, ServiceError
from service.limits.limiter import RateLimiter
from service.limits.policy import estimate_tokens
from service.models.service import ModelRoute
from service.providers.relay import PROVIDER_HEADER
from service.providers.types import UpstreamResponse
from service.proxy.payload import InferencePayload, parse_payload, read_body
from service.proxy.routes import get_route_cache
from service.routing import ServiceRoute
from service.runtime import Runtime
from service.usage.capture import ask_for_stream_usage, hides_stream_usage, usage_from_json
from service.usage.metering import Meter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["proxy"], route_class=ServiceRoute)

MODEL_HEADER = "X-FTM-Model"
DEPLOYMENT_HEADER = "X-FTM-Deployment"
DEPLOYMENT_VERSION_HEADER = "X-FTM-Deployment-Version"
TRANSPARENCY_HEADERS = {
    PROVIDER_HEADER: "The provider that served the request.",
    MODEL_HEADER: "The model that answered (for a deployment: the arm or fallback chosen).",
    DEPLOYMENT_HEADER: "When `model` named a deployment: its name.",
    DEPLOYMENT_VERSION_HEADER: "When `model` named a deployment: the version that routed the request.",
}
RATE_LIMIT_HEADERS = {
    f"x-ratelimit-{what}-{kind}": f"When a {kind}-per-minute limit applies to your key or tenant (the "
    f"tighter one): {text}"
    for kind in ("requests", "tokens")
    for what, text in (
        ("limit", "the limit."),
        ("remaining", "what is left of it in the last minute."),
        ("reset", "when the current minute's window ends, e.g. `12s`."),
    )
}


# The provider's errors come back with their status (401 excepted: our credentials, a 502).
PROXY_ERRORS: dict[int | str, dict[str, Any]] = {
    **errors(
        404,
        429,
        502,
        503,
        504,
        s404="`model_not_found`: not a fine-tuned model or deployment of your tenant, nor a base model.",
        s429="Over a per-minute limit of your key or tenant (`type` `requests` or `tokens`, code "
        "`rate_limit_exceeded`, with `Retry-After` and the `x-ratelimit-*` headers), or the provider's "
        "rate limit, relayed with its `Retry-After`.",
    ),
    "4XX": {
        "model": ErrorResponse,
        "description": "Another refusal of the provider, relayed as it answered.",
    },
    "5XX": {
        "model": ErrorResponse,
        "description": "Another failure of the provider, relayed as it answered.",
    },
}


def _openapi(kind: str, *, streams: bool = True) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "model": {
            "type": "string",
            "minLength": 1,
            "description": "A fine-tuned model of your tenant (`ft:…`), a base model, or the name of "
            "one of your tenant's deployments.",
        }
    }
    if streams:
        properties["stream"] = {"type": "boolean", "description": "Stream the answer as server-sent events."}
    content: dict[str, Any] = {"application/json": {}}
    if streams:
        content["text/event-stream"] = {}
    answer = (
        f"The provider's {kind} object, or with `stream: true` its SSE chunks."
        if streams
        else (f"The provider's {kind} object.")
    )
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["model"],
                        "properties": properties,
                        "additionalProperties": True,
                        "description": f"OpenAI's {kind} request; every other field goes to the provider "
                        "unchanged.",
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": answer,
                "content": content,
                "headers": {
                    name: {"description": text}
                    for name, text in {**TRANSPARENCY_HEADERS, **RATE_LIMIT_HEADERS}.items()
                },
            }
        },
    }


async def _proxy(request: Request, caller: Principal, path: str) -> Response:
    meter = request.app.state.usage.start(caller)
    try:
        return await _metered_proxy(request, caller, path, meter)
    except ServiceError as error:
        meter.finish(error.status_code)
        raise


async def _metered_proxy(request: Request, caller: Principal, path: str, meter: Meter) -> Response:
    runtime = get_runtime(request)
    body = await read_body(
        request.stream(),
        declared=request.headers.get("content-length"),
        limit=runtime.settings.max_json_body_bytes,
    )
    payload = parse_payload(body)
    meter.model = payload.model
    limiter: RateLimiter = request.app.state.limiter
    quota = await limiter.admit(caller, estimate_tokens(payload.raw, payload.body))
    meter.on_usage.append(lambda usage: limiter.settle(quota, usage.input_tokens + usage.output_tokens))
    try:
        return await _route(request, caller, path, payload, meter, runtime, quota.headers)
    except ServiceError as error:
        error.headers.update(quota.headers)
        raise


async def _route(
    request: Request,
    caller: Principal,
    path: str,
    payload: InferencePayload,
    meter: Meter,
    runtime: Runtime,
    limit_headers: dict[str, str],
) -> Response:
    route = await get_route_cache(request.app.state).resolve(
        tenant_id=caller.tenant_id, tenant_name=caller.tenant_name, model=payload.model
    )
    if isinstance(route, DeploymentRoute):
        attempts = route.attempts(payload.body, request.headers)
        used = {DEPLOYMENT_HEADER: route.name, DEPLOYMENT_VERSION_HEADER: str(route.version)}
        meter.deployment, meter.deployment_version = route.name, route.version
    else:
        attempts, used = [route], {}
    for number, attempt in enumerate(attempts, start=1):
        last = number == len(attempts)
        meter.answered_by(attempt.model, attempt.provider)
        try:
            upstream = await _forward(runtime, path, payload, attempt)
        except ProviderError as error:
            if last or not falls_back(error.status_code):
                error.headers.update({MODEL_HEADER: attempt.model, **used})
                raise
            log.warning(
                "proxy %s: %s failed (%s); falling back", payload.model, attempt.model, error.status_code
            )
            continue
        if not last and falls_back(upstream.status):
            log.warning(
                "proxy %s: %s answered %s; falling back", payload.model, attempt.model, upstream.status
            )
            if upstream.aclose is not None:
                await upstream.aclose()
            continue
        headers = {**upstream.headers, MODEL_HEADER: attempt.model, **used, **limit_headers}
        if upstream.chunks is not None:
            return UpstreamStream(meter.tap(upstream, hide_usage=hides_stream_usage(payload.body)), headers)
        meter.finish(upstream.status, usage_from_json(upstream.content or b""))
        return Response(upstream.content, upstream.status, headers=headers, media_type=upstream.media_type)
    raise AssertionError("a route has at least one attempt")  # pragma: no cover


def falls_back(status: int) -> bool:
    """Whether a failure of one model is worth trying the next: the provider failed (5xx, which
    includes not reachable and timed out) or is rate limiting (429); not a refusal of the request."""
    return status >= 500 or status == 429


async def _forward(
    runtime: Runtime, path: str, payload: InferencePayload, route: ModelRoute
) -> UpstreamResponse:
    try:
        client = runtime.providers.relay_client(route.provider)
    except InvalidRequest:  # the provider was configured when the model was made, not any more
        raise ProviderError(
            f"The provider '{route.provider}' serving this model is not configured.",
            status_code=502,
            code="provider_unavailable",
        ) from None
    log.debug("proxy %s %s -> %s %s", path, payload.model, route.provider, route.upstream_model)
    content = payload.for_upstream(route.upstream_model)
    return await client.forward(
        path, ask_for_stream_usage(content) if payload.stream else content, stream=payload.stream
    )


class UpstreamStream(StreamingResponse):
    """Relays an upstream stream chunk by chunk; the upstream is closed whatever happens (finished,
    client gone, server shutting down), releasing the provider connection."""

    def __init__(self, upstream: UpstreamResponse, headers: dict[str, str]) -> None:
        assert upstream.chunks is not None
        self._upstream = upstream
        super().__init__(
            upstream.chunks,
            status_code=upstream.status,
            headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            media_type=upstream.media_type,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._upstream.aclose is not None:
                with anyio.CancelScope(shield=True):
                    await self._upstream.aclose()


@router.post(
    "/chat/completions",
    openapi_extra=_openapi("chat completion"),
    response_class=Response,
    responses=PROXY_ERRORS,
)
async def create_chat_completion(request: Request, caller: InferenceCaller) -> Response:
    """Create a chat completion with one of your fine-tuned models or a base model (OpenAI's
    `POST /v1/chat/completions`). Another tenant's model, or an unknown one, is a 404
    `model_not_found`. Provider errors keep their status, body and `Retry-After`."""
    return await _proxy(request, caller, "/chat/completions")


@router.post(
    "/completions", openapi_extra=_openapi("completion"), response_class=Response, responses=PROXY_ERRORS
)
async def create_completion(request: Request, caller: InferenceCaller) -> Response:
    """Create a (legacy) completion with one of your fine-tuned models or a base model (OpenAI's
    `POST /v1/completions`); same routing and error rules as chat completions."""
    return await _proxy(request, caller, "/completions")


@router.post(
    "/embeddings",
    openapi_extra=_openapi("embeddings list", streams=False),
    response_class=Response,
    responses=PROXY_ERRORS,
)
async def create_embeddings(request: Request, caller: InferenceCaller) -> Response:
    """Create embeddings with an embedding model of the provider (OpenAI's `POST /v1/embeddings`);
    same routing and error rules as chat completions. A provider that has no embeddings answers
    its own 404, which is relayed."""
    return await _proxy(request, caller, "/embeddings")
