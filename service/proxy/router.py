"""`/v1/chat/completions`, `/v1/completions` and `/v1/embeddings`: the inference proxy's routes.

What a proxied request does is `service.proxy.handling`'s. Requests normally reach it through the
lean ASGI path (`service.proxy.asgi`), in front of FastAPI; these routes document the operations
in the OpenAPI document and serve them when the lean path is switched off (`FTM_LEAN_PROXY=false`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service.auth.service import Principal
from service.contract import ErrorResponse, errors
from service.deps import InferenceCaller
from service.providers.relay import PROVIDER_HEADER
from service.proxy.handling import (
    DEPLOYMENT_HEADER,
    DEPLOYMENT_VERSION_HEADER,
    MODEL_HEADER,
    ProxyStream,
    proxy,
)
from service.routing import ServiceRoute

router = APIRouter(prefix="/v1", tags=["proxy"], route_class=ServiceRoute)

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
    answer = await proxy(request.app.state, caller, path, request.stream(), request.headers)
    if answer.stream is not None:
        return UpstreamStream(answer.stream, answer.sent, answer.headers, answer.media_type)
    answer.sent()  # this path is not the fast one: meter it now
    return Response(answer.content, answer.status, headers=answer.headers, media_type=answer.media_type)


class UpstreamStream(StreamingResponse):
    """Relays an upstream stream chunk by chunk through its usage `tap`; the upstream is closed
    whatever happens (finished, client gone, server shutting down), releasing the provider
    connection, and then the request is metered (`ended`)."""

    def __init__(
        self,
        stream: ProxyStream,
        ended: Callable[[], None],
        headers: dict[str, str],
        media_type: str,
    ) -> None:
        upstream, tap = stream
        assert upstream.chunks is not None
        self._upstream = upstream
        self._ended = ended
        super().__init__(
            tap.relay(upstream.chunks), status_code=upstream.status, headers=headers, media_type=media_type
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._upstream.close is not None:
                self._upstream.close()
            self._ended()


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
