"""Send an inference request to a provider and hand back its answer as it comes.

Each provider has one `RelayClient`: a pool of keep-alive connections (`http1.Pool`), the
provider's key and base URL, and the proxy's timeout (for connecting, and between two reads of
the answer). The client was chosen by measurement (`bench/proxy_clients.py` prints the
candidates side by side): the SDK's client and httpx2 with tuned pools cost several times
aiohttp's CPU per request and collapse at 64 concurrent requests; `http1`, asyncio's transports
and httptools' parser with nothing else on the path, costs a fraction of aiohttp's. The request
body goes out as the bytes it was given; the answer becomes an `UpstreamResponse`: a
non-streamed body byte for byte with the upstream status, or a stream of chunks as the provider
sends them, never buffered. The proxy's router turns that into the HTTP response.

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

Only this module knows the HTTP client library; only the router knows HTTP frameworks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from service.errors import ProviderError
from service.providers import http1
from service.providers.types import UpstreamResponse

log = logging.getLogger(__name__)

PROVIDER_HEADER = "X-FTM-Provider"
UPSTREAM_REQUEST_ID_HEADER = "X-FTM-Upstream-Request-Id"
# Connections kept open to one provider at most; requests beyond wait for one (within the timeout).
MAX_CONNECTIONS = 512
USER_AGENT = "finetune-manager-proxy"
STREAM_BROKE_OFF = {
    "error": {
        "message": "The provider's stream broke off before it finished.",
        "type": "api_error",
        "param": None,
        "code": "provider_unavailable",
    }
}
_STREAM_BROKE_OFF_EVENT = b"data: " + json.dumps(STREAM_BROKE_OFF).encode() + b"\n\n"


class RelayClient:
    """One provider's pooled HTTP client for relayed inference requests (`http1.Pool`: its
    connections are per event loop, since a test may run several apps in turn; `aclose` closes
    the running loop's, at the app's shutdown)."""

    def __init__(self, provider: str, *, base_url: str, api_key: str, timeout_s: float) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._pool = http1.Pool(
            self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout_s=timeout_s,
            max_connections=MAX_CONNECTIONS,
        )

    async def aclose(self) -> None:
        """Close the running loop's connections."""
        await self._pool.aclose()

    async def forward(
        self, path: str, content: bytes, *, stream: bool, auth: Mapping[str, str] | None = None
    ) -> UpstreamResponse:
        """POST `content` (a JSON object, sent as is) to `path` at the provider; its answer, or
        ProviderError when there is none a caller could use. `auth`: a tenant's own credentials'
        headers (`ProviderCredentials.headers`), sent instead of the operator's key on this one
        request, over the same pooled connections."""
        provider = self.provider
        try:
            upstream = await self._pool.post(path, content, auth)
        except TimeoutError:
            raise _timed_out(provider) from None
        except http1.UpstreamError:
            raise _unavailable(502, f"The provider '{provider}' could not be reached.", provider) from None
        try:
            if upstream.status >= 300:
                return await _error_response(upstream, provider, tenant_credentials=auth is not None)
            headers = _relayed_headers(upstream, provider)
            media_type = upstream.headers.get("content-type")
            if not stream:
                body = await upstream.read()  # read to its end: the connection goes back to the pool
                return UpstreamResponse(
                    upstream.status, headers, media_type or "application/json", content=body
                )
            # Read before answering: a failure here is still ours to report (and to fall back from).
            first = await upstream.readany()
        except TimeoutError:
            upstream.release()
            raise _timed_out(provider) from None
        except http1.UpstreamError:
            upstream.release()
            what = "the stream before sending anything" if stream else "the connection before answering"
            raise _unavailable(502, f"The provider '{provider}' dropped {what}.", provider) from None
        except BaseException:  # cancelled (the caller went away): free the connection at once
            upstream.release()
            raise
        return UpstreamResponse(
            upstream.status,
            headers,
            media_type or "text/event-stream",
            chunks=_Chunks(first, upstream, provider),
            close=upstream.release,  # a stream not read to its end closes its connection instead
        )


class _Chunks:
    """A stream's chunks as they arrive (the first one already read), ending with the
    broke-off event when the provider's stream breaks off. One object read by the relay's one
    loop: no generator in between, and nothing to close but the response."""

    __slots__ = ("_first", "_upstream", "_provider", "_ended")

    def __init__(self, first: bytes, upstream: http1.Response, provider: str) -> None:
        self._first = first
        self._upstream = upstream
        self._provider = provider
        self._ended = not first

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        first = self._first
        if first:
            self._first = b""
            return first
        if self._ended:
            raise StopAsyncIteration
        try:
            chunk = await self._upstream.readany()
        except (http1.UpstreamError, TimeoutError) as error:
            self._ended = True
            log.warning("stream from provider %s broke off: %s", self._provider, error)
            return _STREAM_BROKE_OFF_EVENT
        if not chunk:
            self._ended = True
            raise StopAsyncIteration
        return chunk


def _relayed_headers(upstream: http1.Response, provider: str) -> dict[str, str]:
    request_id = upstream.headers.get("x-request-id")
    if request_id is None:
        return {PROVIDER_HEADER: provider}
    return {PROVIDER_HEADER: provider, UPSTREAM_REQUEST_ID_HEADER: request_id}


async def _error_response(
    upstream: http1.Response, provider: str, *, tenant_credentials: bool = False
) -> UpstreamResponse:
    status = upstream.status
    if status < 400:  # a redirect, not followed: not something a caller can act on
        upstream.release()
        raise _unavailable(502, f"The provider '{provider}' answered with status {status}.", provider)
    if status == 401:
        # Never relay it: the caller's key is fine, ours is not (and the provider's message may
        # quote part of our key).
        upstream.release()
        whose = "the tenant's own" if tenant_credentials else "the service's"
        log.warning("provider %s rejected %s credentials (401)", provider, whose)
        if tenant_credentials:
            message = (
                f"The provider '{provider}' rejected your tenant's own credentials for it; set them "
                f"again or delete them (/v1/tenants/{{name}}/providers/{provider}/credentials)."
            )
        else:
            message = f"The provider '{provider}' rejected the service's credentials."
        raise _unavailable(502, message, provider)
    content = await upstream.read()
    headers = _relayed_headers(upstream, provider)
    retry_after = upstream.headers.get("retry-after")
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if _is_openai_error(content):
        return UpstreamResponse(status, headers, "application/json", content=content)
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


def _timed_out(provider: str) -> ProviderError:
    return _unavailable(504, f"The provider '{provider}' did not answer in time.", provider)


def _unavailable(status: int, message: str, provider: str) -> ProviderError:
    return ProviderError(
        message, status_code=status, code="provider_unavailable", headers={PROVIDER_HEADER: provider}
    )
