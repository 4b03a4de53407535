"""Send an inference request to a provider and hand back its answer as it comes.

The request goes through the provider's cached `openai.AsyncOpenAI` client (its credentials, its
connection pool, its timeout) with `cast_to=httpx2.Response`, so the SDK hands back the raw
upstream response. It becomes an `UpstreamResponse`: a non-streamed body byte for byte with the
upstream status, or a stream of chunks as the provider sends them, never buffered. The proxy's
router turns that into the HTTP response.

Failures keep their meaning for `openai` SDK callers:

- the provider answered 4xx/5xx: same status, the provider's `{"error": ...}` body, and its
  `Retry-After` (so the caller gets `RateLimitError`, `NotFoundError`, ... and backs off as told);
  except 401, which means *our* provider credentials are wrong and becomes a 502;
- the provider cannot be reached: 502 (504 on a timeout), type `api_error`, code
  `provider_unavailable`;
- a stream breaks off before its first byte: nothing has reached the caller, so it is a failure
  like an unreachable provider (502, 504 on a timeout), which a deployment can still fall back from;
- a stream breaks off midway: the status is already sent, so a final SSE event
  `data: {"error": {...}}` is written, which the SDK raises as `APIError`.

It lives with the providers because only `service/providers/` imports `openai`; only the router
knows HTTP frameworks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import httpx2
import openai

from service.errors import ProviderError
from service.providers.types import UpstreamResponse

log = logging.getLogger(__name__)

PROVIDER_HEADER = "X-FTM-Provider"
STREAM_BROKE_OFF = {
    "error": {
        "message": "The provider's stream broke off before it finished.",
        "type": "api_error",
        "param": None,
        "code": "provider_unavailable",
    }
}


async def forward(
    client: openai.AsyncOpenAI, path: str, content: bytes, *, stream: bool, provider: str
) -> UpstreamResponse:
    """POST `content` (a JSON object) to `path` at the provider; its answer, or ProviderError when
    there is none a caller could use."""
    try:
        upstream = cast(
            httpx2.Response,
            await client.post(path, cast_to=httpx2.Response, content=content, stream=stream),
        )
    except openai.APIStatusError as error:
        return _error_response(error, provider)
    except openai.APITimeoutError:
        raise _unavailable(504, f"The provider '{provider}' did not answer in time.", provider) from None
    except openai.APIConnectionError:
        raise _unavailable(502, f"The provider '{provider}' could not be reached.", provider) from None
    headers = _relayed_headers(upstream, provider)
    media_type = upstream.headers.get("content-type")
    if stream:
        chunks = upstream.aiter_bytes()
        try:
            first = await anext(chunks, b"")  # read before answering: a failure here is still ours to report
        except httpx2.TimeoutException:
            await upstream.aclose()
            raise _unavailable(504, f"The provider '{provider}' did not answer in time.", provider) from None
        except httpx2.TransportError:
            await upstream.aclose()
            raise _unavailable(
                502, f"The provider '{provider}' dropped the stream before sending anything.", provider
            ) from None
        relay = _relay(first, chunks, provider)

        async def aclose() -> None:
            await relay.aclose()
            await upstream.aclose()

        return UpstreamResponse(
            upstream.status_code, headers, media_type or "text/event-stream", chunks=relay, aclose=aclose
        )
    return UpstreamResponse(
        upstream.status_code, headers, media_type or "application/json", content=upstream.content
    )


async def _relay(first: bytes, rest: AsyncIterator[bytes], provider: str) -> AsyncGenerator[bytes, None]:
    if first:
        yield first
    try:
        async for chunk in rest:
            yield chunk
    except httpx2.TransportError as error:
        log.warning("stream from provider %s broke off: %s", provider, type(error).__name__)
        yield b"data: " + json.dumps(STREAM_BROKE_OFF).encode() + b"\n\n"


def _relayed_headers(upstream: httpx2.Response, provider: str) -> dict[str, str]:
    headers = {PROVIDER_HEADER: provider}
    request_id = upstream.headers.get("x-request-id")
    if request_id is not None:
        headers["X-FTM-Upstream-Request-Id"] = request_id
    return headers


def _error_response(error: openai.APIStatusError, provider: str) -> UpstreamResponse:
    upstream = error.response
    status = upstream.status_code
    if status == 401:
        # Never relay it: the caller's key is fine, ours is not (and the provider's message may
        # quote part of our key).
        log.warning("provider %s rejected the service's credentials (401)", provider)
        raise _unavailable(502, f"The provider '{provider}' rejected the service's credentials.", provider)
    if status < 400:  # a redirect the client did not follow: not something a caller can act on
        raise _unavailable(502, f"The provider '{provider}' answered with status {status}.", provider)
    headers = _relayed_headers(upstream, provider)
    retry_after = upstream.headers.get("retry-after")
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if _is_openai_error(upstream.content):
        return UpstreamResponse(status, headers, "application/json", content=upstream.content)
    # Not OpenAI's error shape (a gateway's HTML page, say): keep the status, give the shape.
    body = {
        "error": {
            "message": f"The provider '{provider}' answered with status {status}.",
            "type": "api_error" if status >= 500 else "invalid_request_error",
            "param": None,
            "code": "provider_error",
        }
    }
    return UpstreamResponse(status, headers, "application/json", content=json.dumps(body).encode())


def _is_openai_error(content: bytes) -> bool:
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def _unavailable(status: int, message: str, provider: str) -> ProviderError:
    return ProviderError(
        message, status_code=status, code="provider_unavailable", headers={PROVIDER_HEADER: provider}
    )
