"""Fixtures for the limits tests: the fake provider, and rate limiters on a shared Redis (a real
server when FTM_TEST_REDIS_URL is set, else one fakeredis server that every limiter shares, as two
API processes share one Redis)."""

from __future__ import annotations

import os
from collections.abc import Callable

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis
from fastapi import FastAPI

from service.config import Settings
from service.limits.limiter import RateLimiter
from tests.proxy.conftest import upstream

__all__ = ["upstream"]


@pytest.fixture
def shared_redis(redis_client: redis.Redis) -> Callable[[], aioredis.Redis]:
    """A factory of async clients of one Redis; it starts empty (`redis_client` flushes a real one)."""
    url = os.environ.get("FTM_TEST_REDIS_URL")
    if url:
        return lambda: aioredis.Redis.from_url(url)
    server = fakeredis.FakeServer()
    return lambda: fakeredis.FakeAsyncRedis(server=server)


def limit_app(app: FastAPI, settings: Settings, client: Callable[[], aioredis.Redis] | None) -> None:
    """Give `app` a rate limiter on `client`'s Redis (None: its own client of `settings.redis_url`),
    with `settings`' limits."""
    app.state.limiter = RateLimiter(settings, app.state.limiter.metrics, client=client)
