"""After a Redis failure the limiter leaves Redis alone for the breaker's time, so no request waits
on a Redis that is down; then it tries again."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError

from service.auth.service import Principal
from service.config import Settings
from service.limits.limiter import NO_LIMITS, LimitMetrics, RateLimiter

CALLER = Principal("tenant_a", "a", "key_a", frozenset({"inference"}), key_rpm=10)


class DownRedis:
    """A client whose every script call fails as an unreachable server's would, counting them."""

    def __init__(self) -> None:
        self.calls = 0

    def register_script(self, _: str) -> Any:
        async def call(**_: object) -> list[int]:
            self.calls += 1
            raise RedisConnectionError("Connection refused")

        return call

    async def aclose(self) -> None:
        return None


def test_after_a_failure_redis_is_not_tried_until_the_breaker_time_has_passed(settings: Settings) -> None:
    now = [100.0]
    down = DownRedis()
    limiter = RateLimiter(
        settings.model_copy(update={"rate_limit_breaker_s": 5.0}),
        LimitMetrics(CollectorRegistry()),
        client=lambda: down,  # type: ignore[arg-type,return-value]
        clock=lambda: now[0],
    )

    async def admit() -> object:
        return await limiter.admit(CALLER, 10)

    first = asyncio.run(admit())
    during = [asyncio.run(admit()) for _ in range(3)]
    calls_during = down.calls
    now[0] += 5.1
    after = asyncio.run(admit())

    assert first is NO_LIMITS
    assert during == [NO_LIMITS] * 3
    assert calls_during == 1
    assert after is NO_LIMITS
    assert down.calls == 2
