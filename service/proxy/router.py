"""`/v1/chat/completions` and `/v1/completions`: the inference proxy.

Each request is checked (a JSON object with a `model`), routed for the caller's tenant from an
in-memory route cache, and relayed to the model's provider with the provider's credentials. The
body is forwarded as written apart from `model`; the answer (JSON, or an SSE stream relayed as it
arrives) comes back with the provider's status.
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
from service.deps import InferenceCaller, get_runtime
from service.errors import InvalidRequest, ProviderError
from service.providers.relay import PROVIDER_HEADER, forward
from service.providers.types import UpstreamResponse
from service.proxy.payload import parse_payload, read_body
from service.proxy.routes import get_route_cache
from service.routing import ServiceRoute

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["proxy"], route_class=ServiceRoute)


# The provider's errors come back with their status (401 excepted: our credentials, a 502).
PROXY_ERRORS: dict[int | str, dict[str, Any]] = {
    **errors(
        404,
        429,
        502,
        503,
        504,
        s404="`model_not_found`: not a fine-tuned model of your tenant nor a base model.",
        s429="The provider's rate limit, relayed with its `Retry-After`.",
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


def _openapi(kind: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["model"],
                        "properties": {
                            "model": {
                                "type": "string",
                                "minLength": 1,
                                "description": "A fine-tuned model of your tenant (`ft:…`) or a base model.",
                            },
                            "stream": {
                                "type": "boolean",
                                "description": "Stream the answer as server-sent events.",
                            },
                        },
                        "additionalProperties": True,
                        "description": f"OpenAI's {kind} request; every other field goes to the provider "
                        "unchanged.",
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": f"The provider's {kind} object, or with `stream: true` its SSE chunks.",
                "content": {"application/json": {}, "text/event-stream": {}},
                "headers": {PROVIDER_HEADER: {"description": "The provider that served the request."}},
            }
        },
    }


async def _proxy(request: Request, caller: Principal, path: str) -> Response:
    runtime = get_runtime(request)
    body = await read_body(
        request.stream(),
        declared=request.headers.get("content-length"),
        limit=runtime.settings.max_json_body_bytes,
    )
    payload = parse_payload(body)
    route = await get_route_cache(request.app.state).resolve(
        tenant_id=caller.tenant_id, tenant_name=caller.tenant_name, model=payload.model
    )
    try:
        client = runtime.providers.async_client(route.provider)
    except InvalidRequest:  # the provider was configured when the model was made, not any more
        raise ProviderError(
            f"The provider '{route.provider}' serving this model is not configured.",
            status_code=502,
            code="provider_unavailable",
        ) from None
    log.debug("proxy %s %s -> %s %s", path, payload.model, route.provider, route.upstream_model)
    upstream = await forward(
        client,
        path,
        payload.for_upstream(route.upstream_model),
        stream=payload.stream,
        provider=route.provider,
    )
    if upstream.chunks is not None:
        return UpstreamStream(upstream)
    return Response(
        upstream.content, upstream.status, headers=upstream.headers, media_type=upstream.media_type
    )


class UpstreamStream(StreamingResponse):
    """Relays an upstream stream chunk by chunk; the upstream is closed whatever happens (finished,
    client gone, server shutting down), releasing the provider connection."""

    def __init__(self, upstream: UpstreamResponse) -> None:
        assert upstream.chunks is not None
        self._upstream = upstream
        super().__init__(
            upstream.chunks,
            status_code=upstream.status,
            headers={**upstream.headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
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
