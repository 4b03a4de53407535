"""Limits admitted from leases: what the docstring of `service.limits.limiter` promises, checked
with two limiters (two API processes) sharing one Redis (fakeredis, or a real server when
FTM_TEST_REDIS_URL is set) and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from service.auth.service import Principal
from service.config import Settings
from service.errors import RateLimitExceeded
from service.limits.leases import LEASE_S, lease_size
from service.limits.limiter import LimitMetrics, RateLimiter

LIMIT = 1000


class Counted:
    """A Redis client whose script calls (the limiter's round trips) are counted."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.calls = 0
        self.pipelines = 0

    def register_script(self, script: str) -> Any:
        registered = self.client.register_script(script)

        async def call(**kwargs: Any) -> Any:
            self.calls += 1
            return await registered(**kwargs)

        return call

    def pipeline(self, **kwargs: Any) -> Any:
        self.pipelines += 1
        return self.client.pipeline(**kwargs)

    async def aclose(self) -> None:
        await self.client.aclose()


def caller(key_rpm: int = LIMIT, key: str = "key_a") -> Principal:
    return Principal("tenant_a", "a", key, frozenset({"inference"}), key_rpm=key_rpm)


def limiters(
    settings: Settings, shared_redis: Callable[[], aioredis.Redis], now: list[float], count: int = 2
) -> tuple[list[RateLimiter], list[Counted]]:
    clients = [Counted(shared_redis()) for _ in range(count)]
    made = [
        RateLimiter(
            settings,
            LimitMetrics(CollectorRegistry()),
            client=lambda c=client: c,  # type: ignore[misc]
            clock=lambda: now[0],
        )
        for client in clients
    ]
    return made, clients


async def admitted(limiter: RateLimiter, who: Principal) -> bool:
    try:
        await limiter.admit(who, 10)
    except RateLimitExceeded:
        return False
    finally:
        await limiter.top_ups_done()
    return True


async def counted_in_redis(client: aioredis.Redis, key_id: str = "key_a") -> int:
    total = 0
    for key in await client.keys(f"ftm:rl:key:{key_id}:requests:*"):
        total += int(await client.get(key) or 0)
    return total


def test_two_processes_together_never_admit_more_than_the_limit_nor_much_less(
    settings: Settings, shared_redis: Callable[[], aioredis.Redis]
) -> None:
    now = [100.0]
    (first, second), _ = limiters(settings, shared_redis, now)

    async def run() -> int:
        count = 0
        for n in range(2 * LIMIT):
            count += await admitted(first if n % 2 else second, caller())
        await first.aclose()
        await second.aclose()
        return count

    total = asyncio.run(run())

    assert total <= LIMIT
    assert total >= LIMIT - 2 * 2 * lease_size(LIMIT)  # two processes, two leases each at most


def test_most_requests_are_admitted_without_a_round_trip_to_redis(
    settings: Settings, shared_redis: Callable[[], aioredis.Redis]
) -> None:
    now = [100.0]
    (limiter,), (client,) = limiters(settings, shared_redis, now, count=1)

    async def run() -> None:
        for _ in range(200):
            await limiter.admit(caller(key_rpm=1_000_000), 10)
            await limiter.top_ups_done()
        await limiter.aclose()

    asyncio.run(run())

    assert client.calls <= 3


def test_admit_from_leases_answers_without_io_only_while_a_lease_holds_the_units(
    settings: Settings, shared_redis: Callable[[], aioredis.Redis]
) -> None:
    now = [100.0]
    (limiter,), (client,) = limiters(settings, shared_redis, now, count=1)
    who = caller(key_rpm=1_000_000)

    async def run() -> tuple[bool, bool, bool]:
        before = limiter.admit_from_leases(who, 10) is None  # nothing in hand yet
        await limiter.admit(who, 10)  # takes the lease (one round trip)
        await limiter.top_ups_done()
        calls = client.calls
        in_hand = limiter.admit_from_leases(who, 10)
        now[0] += 2  # past the lease's life
        expired = limiter.admit_from_leases(who, 10) is None
        await limiter.aclose()
        return before, in_hand is not None and client.calls == calls, expired

    before, admitted_in_hand, expired = asyncio.run(run())

    assert before
    assert admitted_in_hand
    assert expired


def test_a_lease_is_not_spent_after_it_expires_and_its_units_go_back(
    settings: Settings, shared_redis: Callable[[], aioredis.Redis]
) -> None:
    now = [100.0]
    (limiter,), (client,) = limiters(settings, shared_redis, now, count=1)

    async def run() -> tuple[int, int, int]:
        await admitted(limiter, caller())
        calls = client.calls
        now[0] += LEASE_S + 0.01
        await admitted(limiter, caller())
        after_expiry = client.calls - calls
        await limiter.aclose()
        reader = shared_redis()
        counted = await counted_in_redis(reader)
        await reader.aclose()
        return after_expiry, counted, 2

    after_expiry, counted, admitted_count = asyncio.run(run())

    assert after_expiry >= 1  # the expired lease was not spent: Redis was asked again
    assert counted == admitted_count  # every unit counted and not spent was given back


@pytest.mark.parametrize("limit", [1, 5, 99])
def test_under_a_hundred_a_minute_one_process_admits_exactly_the_limit(
    settings: Settings, shared_redis: Callable[[], aioredis.Redis], limit: int
) -> None:
    now = [100.0]
    (limiter,), _ = limiters(settings, shared_redis, now, count=1)

    async def run() -> list[bool]:
        answers = [await admitted(limiter, caller(key_rpm=limit)) for _ in range(limit + 3)]
        await limiter.aclose()
        return answers

    answers = asyncio.run(run())

    assert answers == [True] * limit + [False] * 3


def test_a_token_estimate_is_corrected_in_the_lease_it_was_spent_from_without_a_call_to_redis(
    settings: Settings, shared_redis: Callable[[], aioredis.Redis]
) -> None:
    now = [100.0]
    (limiter,), (client,) = limiters(settings, shared_redis, now, count=1)
    who = Principal("tenant_a", "a", "key_a", frozenset({"inference"}), key_tpm=1_000_000)

    async def run() -> str:
        quota = await limiter.admit(who, 500)
        limiter.settle(quota, 100)  # 400 tokens fewer than estimated
        await limiter.send_corrections()
        after = await limiter.admit(who, 500)
        await limiter.aclose()
        return after.headers["x-ratelimit-remaining-tokens"]

    remaining = asyncio.run(run())

    assert int(remaining) == 1_000_000 - 100 - 500
    assert client.pipelines == 1  # only the shutdown's: the unspent lease given back
