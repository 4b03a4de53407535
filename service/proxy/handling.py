"""The proxy's work for one request, apart from any HTTP framework: read and check the body,
hold it to the caller's limits, route it (a model, or a deployment's arm with its fallbacks),
relay it and meter it. `service.proxy.asgi` (the lean path every proxied request takes) and the
FastAPI routes of `service.proxy.router` (documentation, and the path used with
`FTM_LEAN_PROXY=false`) both turn its `ProxyAnswer` into the HTTP response.

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
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

from service.auth.service import Principal
from service.deployments.routing import DeploymentRoute
from service.errors import InvalidRequest, ProviderError, ServiceError
from service.limits.limiter import Quota, RateLimiter
from service.limits.policy import estimate_tokens
from service.models.service import ModelRoute
from service.providers.credentials_cache import get_credentials_cache
from service.providers.types import UpstreamResponse
from service.proxy.payload import InferencePayload, parse_payload, read_body, whole_body
from service.proxy.routes import get_route_cache
from service.runtime import Runtime
from service.usage.capture import (
    TokenUsage,
    UsageTap,
    ask_for_stream_usage,
    hides_stream_usage,
    usage_from_json,
)
from service.usage.metering import Meter, Metering

log = logging.getLogger(__name__)

MODEL_HEADER = "X-FTM-Model"
DEPLOYMENT_HEADER = "X-FTM-Deployment"
DEPLOYMENT_VERSION_HEADER = "X-FTM-Deployment-Version"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ProxyStream(NamedTuple):
    """A streamed answer: the upstream's chunks, each to be passed through `tap`'s `feed` (and
    its `end` after the last), the upstream closed however the relay ends."""

    upstream: UpstreamResponse
    tap: UsageTap


class ProxyAnswer(NamedTuple):
    """What to answer: the status, the headers (transparency and limits included) and either the
    whole body (`content`) or the upstream's stream (`stream`). `sent` is to be called once the
    answer has gone out, or failed to, or the stream has ended however it did: it meters the
    request then, off the time the caller waits."""

    status: int
    headers: dict[str, str]
    media_type: str
    sent: Callable[[], None]
    content: bytes = b""
    stream: ProxyStream | None = None


async def proxy(
    state: Any,
    caller: Principal,
    path: str,
    body: bytes | AsyncIterator[bytes],
    headers: Mapping[str, str],
) -> ProxyAnswer:
    """Serve one inference request of `caller` to `path` (`/chat/completions`, ...): `body` is
    the request body as it streams in (or whole), `headers` the request's (lower-case names). `state` is the
    app's state (runtime, usage, limiter, route cache). ServiceError when it is refused or fails."""
    metering: Metering = state.usage
    meter = metering.start(caller)
    try:
        return await _metered(state, caller, path, body, headers, meter)
    except ServiceError as error:
        meter.finish(error.status_code)
        raise


async def _metered(
    state: Any,
    caller: Principal,
    path: str,
    body: bytes | AsyncIterator[bytes],
    headers: Mapping[str, str],
    meter: Meter,
) -> ProxyAnswer:
    runtime: Runtime = state.runtime
    limit = runtime.settings.max_json_body_bytes
    if isinstance(body, bytes):  # had whole (the lean path refused a larger declared length)
        raw = whole_body(body, limit=limit)
    else:
        raw = await read_body(body, declared=headers.get("content-length"), limit=limit)
    payload = parse_payload(raw)
    meter.model = payload.model
    limiter: RateLimiter = state.limiter
    estimate = estimate_tokens(payload.raw, payload.body)
    quota = limiter.admit_from_leases(caller, estimate) or await limiter.admit(caller, estimate)
    if quota.token_leases:  # no token limit, nothing to correct
        meter.on_usage = partial(_settle, limiter, quota)
    try:
        return await _route(state, caller, path, payload, headers, meter, runtime, quota.headers)
    except ServiceError as error:
        error.headers.update(quota.headers)
        raise


async def _route(
    state: Any,
    caller: Principal,
    path: str,
    payload: InferencePayload,
    headers: Mapping[str, str],
    meter: Meter,
    runtime: Runtime,
    limit_headers: dict[str, str],
) -> ProxyAnswer:
    routes = get_route_cache(state)
    route = routes.cached(tenant_id=caller.tenant_id, model=payload.model) or await routes.resolve(
        tenant_id=caller.tenant_id, tenant_name=caller.tenant_name, model=payload.model
    )
    if isinstance(route, DeploymentRoute):
        attempts = route.attempts(payload.body, headers)
        used = {DEPLOYMENT_HEADER: route.name, DEPLOYMENT_VERSION_HEADER: str(route.version)}
        meter.deployment, meter.deployment_version = route.name, route.version
    else:
        attempts, used = [route], {}
    for number, attempt in enumerate(attempts, start=1):
        last = number == len(attempts)
        meter.answered_by(attempt.model, attempt.provider)
        try:
            credentials = get_credentials_cache(state)
            known = credentials.cached(caller.tenant_id, attempt.provider)
            auth = (
                known.value
                if known is not None
                else await credentials.auth(caller.tenant_id, attempt.provider)
            )
            upstream = await _forward(runtime, path, payload, attempt, auth)
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
            if upstream.close is not None:
                upstream.close()
            continue
        answer_headers = {**upstream.headers, MODEL_HEADER: attempt.model, **used, **limit_headers}
        media_type = upstream.media_type or "application/json"
        if upstream.chunks is not None:
            answer_headers.update(STREAM_HEADERS)
            tap = UsageTap(hide=hides_stream_usage(payload.body))
            sent = partial(meter.finish_stream, upstream.status, tap)
            stream = ProxyStream(upstream, tap)
            return ProxyAnswer(upstream.status, answer_headers, media_type, sent, stream=stream)
        content = upstream.content or b""
        sent = partial(_meter_answer, meter, upstream.status, content)
        return ProxyAnswer(upstream.status, answer_headers, media_type, sent, content=content)
    raise AssertionError("a route has at least one attempt")  # pragma: no cover


def _meter_answer(meter: Meter, status: int, content: bytes) -> None:
    meter.finish(status, usage_from_json(content))


def _settle(limiter: RateLimiter, quota: Quota, usage: TokenUsage) -> None:
    limiter.settle(quota, usage.input_tokens + usage.output_tokens)


def falls_back(status: int) -> bool:
    """Whether a failure of one model is worth trying the next: the provider failed (5xx, which
    includes not reachable and timed out) or is rate limiting (429); not a refusal of the request."""
    return status >= 500 or status == 429


async def _forward(
    runtime: Runtime, path: str, payload: InferencePayload, route: ModelRoute, auth: Mapping[str, str] | None
) -> UpstreamResponse:
    """Relay to the route's provider, with the tenant's own credentials there (`auth`, from
    memory: `service.providers.credentials_cache`) or, without any, the operator's."""
    try:
        client = runtime.providers.relay_client(route.provider)
    except InvalidRequest:  # the provider was configured when the model was made, not any more
        raise ProviderError(
            f"The provider '{route.provider}' serving this model is not configured.",
            status_code=502,
            code="provider_unavailable",
        ) from None
    content = payload.for_upstream(route.upstream_model)
    return await client.forward(
        path, ask_for_stream_usage(content) if payload.stream else content, stream=payload.stream, auth=auth
    )
