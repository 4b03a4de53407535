"""Per-minute request and token limits, shared by every API process and replica through Redis.

`admit` costs one Redis round trip (a Lua script, `window.lua`, that checks and counts every
counter of the caller at once) on an async client with a short timeout. Token limits count an
estimate first; `settle` adds the difference to the actual usage later, off the request's path,
the corrections of many requests summed into one pipelined call.

Redis unreachable or slow: the request is served without limits (fail open), the failure is
logged (once per outage) and counted in `ftm_rate_limit_unavailable_total`, and for `breaker_s`
after it Redis is not tried at all, so no request waits for a timeout while it is down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from service.auth.service import Principal
from service.config import Settings
from service.errors import RateLimitExceeded
from service.limits.policy import Limit, limits_for

log = logging.getLogger(__name__)
SCRIPT = files("service.limits").joinpath("window.lua").read_text()
CORRECTION_DELAY_S = 0.05


def duration(ms: int) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `250ms`."""
    if ms < 1000:
        return f"{ms}ms"
    seconds = math.ceil(ms / 1000)
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


@dataclass
class Quota:
    """What `admit` decided: the `x-ratelimit-*` headers, and how to correct the token estimate."""

    headers: dict[str, str] = field(default_factory=dict)
    token_keys: tuple[str, ...] = ()
    estimate: int = 0


NO_LIMITS = Quota()


class LimitMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.refused = Counter(
            "ftm_rate_limit_refused_total",
            "Proxied requests refused by a per-minute limit, by tenant and limit type.",
            ["tenant", "type"],
            registry=registry,
        )
        self.unavailable = Counter(
            "ftm_rate_limit_unavailable_total",
            "Proxied requests served without a limit check because Redis failed or was skipped.",
            registry=registry,
        )


class RateLimiter:
    def __init__(
        self,
        settings: Settings,
        metrics: LimitMetrics,
        *,
        client: Callable[[], aioredis.Redis] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self.metrics = metrics
        self._connect = client or self._default_client
        self._client: aioredis.Redis | None = None
        self._script: Any = None
        self._clock = clock
        self._skip_until = 0.0  # the breaker: after a failure Redis is not tried before this
        self._outage_logged = False
        self._corrections: dict[str, int] = {}  # counter -> tokens to add (negative: to give back)
        self._correcting: asyncio.Task[None] | None = None

    def _default_client(self) -> aioredis.Redis:
        timeout = self._settings.rate_limit_redis_timeout_s
        return aioredis.Redis.from_url(
            self._settings.redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # a failed call fails open at once; the breaker retries later
        )

    async def admit(self, caller: Principal, tokens: int) -> Quota:
        """Count this request against the caller's limits; RateLimitExceeded (429) when over one."""
        limits = limits_for(caller, self._settings)
        if not limits:
            return NO_LIMITS
        if self._clock() < self._skip_until:
            self.metrics.unavailable.inc()
            return NO_LIMITS
        keys = [f"ftm:rl:{limit.scope}:{limit.owner}:{limit.kind}" for limit in limits]
        args: list[int] = []
        for limit in limits:
            args += [limit.per_minute, 1 if limit.kind == "requests" else tokens]
        try:
            reply = await self._run(keys, args)
        except (TimeoutError, RedisError, OSError) as error:
            self._failed(error)
            return NO_LIMITS
        self._outage_logged = False
        admitted, refusing, retry_ms, window, reset_ms = (int(value) for value in reply[:5])
        used = [int(value) for value in reply[5:]]
        headers = _headers(limits, used, reset_ms)
        if not admitted:
            limit = limits[refusing - 1]
            self.metrics.refused.labels(caller.tenant_id, limit.kind).inc()
            raise _refusal(limit, used[refusing - 1], retry_ms, headers)
        token_keys = tuple(
            f"{key}:{window}" for key, limit in zip(keys, limits, strict=True) if limit.kind == "tokens"
        )
        return Quota(headers, token_keys, tokens)

    def settle(self, quota: Quota, actual_tokens: int) -> None:
        """Correct the token counters by the actual usage, in the background: corrections are
        summed per counter and sent together (one pipeline) `CORRECTION_DELAY_S` after the first
        one, never awaited by a request."""
        delta = actual_tokens - quota.estimate
        if not quota.token_keys or not delta or self._client is None:
            return
        for key in quota.token_keys:
            self._corrections[key] = self._corrections.get(key, 0) + delta
        if self._correcting is None:
            self._correcting = asyncio.get_running_loop().create_task(self._send_corrections())

    async def send_corrections(self) -> None:
        """Send the pending token corrections now (shutdown; tests)."""
        if self._correcting is not None:
            self._correcting.cancel()
            await asyncio.gather(self._correcting, return_exceptions=True)
        await self._adjust()

    async def aclose(self) -> None:
        await self.send_corrections()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self, keys: Sequence[str], args: Sequence[int]) -> list[Any]:
        if self._client is None:
            self._client = self._connect()
            self._script = self._client.register_script(SCRIPT)
        timeout = self._settings.rate_limit_redis_timeout_s
        async with asyncio.timeout(timeout * 2):  # connect and reply each have `timeout`
            reply: list[Any] = await self._script(keys=keys, args=args)
        return reply

    async def _send_corrections(self) -> None:
        try:
            await asyncio.sleep(CORRECTION_DELAY_S)
        finally:
            self._correcting = None
        await self._adjust()

    async def _adjust(self) -> None:
        corrections, self._corrections = self._corrections, {}
        if not corrections or self._client is None:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, delta in corrections.items():
                    pipe.incrby(key, delta)
                await pipe.execute()
        except (TimeoutError, RedisError, OSError) as error:
            self._failed(error)  # a counter stays at its estimate: never more than one minute's worth

    def _failed(self, error: BaseException) -> None:
        self.metrics.unavailable.inc()
        self._skip_until = self._clock() + self._settings.rate_limit_breaker_s
        if not self._outage_logged:
            self._outage_logged = True
            log.warning(
                "rate limits unavailable (%s: %s); serving without them, Redis retried every %s s",
                type(error).__name__,
                error,
                self._settings.rate_limit_breaker_s,
            )


def _headers(limits: Sequence[Limit], used: Sequence[int], reset_ms: int) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*` trio per kind, from the tightest of the key's and tenant's limits."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        tightest = min(
            (
                (limit.per_minute - count, limit.per_minute)
                for limit, count in zip(limits, used, strict=True)
                if limit.kind == kind
            ),
            default=None,
        )
        if tightest is not None:
            remaining, per_minute = tightest
            headers[f"x-ratelimit-limit-{kind}"] = str(per_minute)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(remaining, 0))
            headers[f"x-ratelimit-reset-{kind}"] = duration(reset_ms)
    return headers


def _refusal(limit: Limit, used: int, retry_ms: int, headers: dict[str, str]) -> RateLimitExceeded:
    retry_s = max(1, math.ceil(retry_ms / 1000))
    per = "RPM" if limit.kind == "requests" else "TPM"
    return RateLimitExceeded(
        f"Rate limit reached for {limit.kind} per minute ({per}) on this {limit.scope}: limit "
        f"{limit.per_minute}, used {used}. Please try again in {retry_s}s.",
        kind=limit.kind,
        headers={**headers, "Retry-After": str(retry_s)},
    )
