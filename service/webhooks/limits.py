"""The per-endpoint concurrency cap across every worker process: leases of an endpoint's slots,
kept in Redis.

A worker's batch already caps its own requests to one endpoint; with W worker processes that
alone would let W times the cap reach a slow receiver, which is what the cap exists to prevent
(one slow receiver holding every worker's slots). So before sending to an endpoint a batch leases
some of the endpoint's `cap` slots (as many as it has deliveries for it, up to the cap), sends
through that many lanes, and gives them back when done: a sorted set per endpoint whose members
are the leased slots, scored by when they lapse. Leasing (a Lua script, atomic) first drops
lapsed slots, so a worker that died mid-batch holds its slots for at most `LEASE_S`, never for
ever; a batch still sending renews its lease well before then. A batch that finds no slot free
waits (a growing random pause) and asks again; a batch granted fewer slots than it wanted keeps
that many lanes to the end (the endpoint's other deliveries wait for the next batch's share). It
costs two or three Redis round trips per endpoint and batch, not per request.

Redis down fails open: the batch goes ahead under its own cap, and the limiter stays out of the
way for `RETRY_AFTER_S` before asking Redis again (Redis holds nothing that cannot be rebuilt;
delivery must not stop because of it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

import redis
import redis.asyncio

log = logging.getLogger(__name__)

KEY = "ftm:webhooks:slots:{endpoint_id}"
LEASE_S = 60.0  # a request times out after 15 s; a lease outlives a few, renewed every RENEW_S
RENEW_S = 15.0
RETRY_AFTER_S = 5.0  # after a Redis failure, go without the shared cap this long
WAIT_S = (0.01, 0.2)  # between tries for a busy endpoint: random, growing to the upper bound

# KEYS[1] the endpoint's set; ARGV: lease id, now (ms), lease (ms), cap, slots wanted.
# Returns how many slots were leased (members "<lease id>:<i>").
_TAKE = """
local key, lease = KEYS[1], ARGV[1]
local now, lease_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local cap, want = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local free = cap - redis.call('ZCARD', key)
local granted = math.min(free, want)
for i = 1, granted do
  redis.call('ZADD', key, now + lease_ms, lease .. ':' .. i)
end
if granted > 0 then
  redis.call('PEXPIRE', key, lease_ms)
end
return math.max(granted, 0)
"""


class Lease(Protocol):
    """Slots of one endpoint held by one batch."""

    @property
    def granted(self) -> int: ...

    async def keep(self) -> None:
        """Called before each request: renews the lease when it is getting old."""


class EndpointLimiter(Protocol):
    def lease(
        self, endpoint_id: str, *, want: int, cap: int
    ) -> contextlib.AbstractAsyncContextManager[Lease]:
        """Held while the batch sends to the endpoint: at least one slot, at most `want`."""
        ...


class _LocalLease:
    def __init__(self, granted: int) -> None:
        self.granted = granted

    async def keep(self) -> None:
        return None


class _Unlimited:
    """No shared cap: every slot wanted is granted (each process caps itself)."""

    @contextlib.asynccontextmanager
    async def lease(self, endpoint_id: str, *, want: int, cap: int) -> AsyncIterator[Lease]:
        yield _LocalLease(want)


UNLIMITED: EndpointLimiter = _Unlimited()


class _RedisLease:
    def __init__(self, limiter: RedisEndpointLimiter, key: str, lease_id: str, granted: int) -> None:
        self._limiter, self._key, self._id, self.granted = limiter, key, lease_id, granted
        self._renewed = time.monotonic()

    @property
    def members(self) -> list[str]:
        return [f"{self._id}:{i}" for i in range(1, self.granted + 1)]

    async def keep(self) -> None:
        if time.monotonic() - self._renewed < RENEW_S:
            return
        self._renewed = time.monotonic()
        await self._limiter.renew(self._key, self.members)


class RedisEndpointLimiter:
    """At most `cap` requests in flight per endpoint across every process sharing this Redis."""

    def __init__(self, client: redis.asyncio.Redis, *, lease_s: float = LEASE_S) -> None:
        self._redis = client
        self._take = client.register_script(_TAKE)
        self._lease_ms = int(lease_s * 1000)
        self._skip_until = 0.0

    @contextlib.asynccontextmanager
    async def lease(self, endpoint_id: str, *, want: int, cap: int) -> AsyncIterator[Lease]:
        key = KEY.format(endpoint_id=endpoint_id)
        lease_id = uuid.uuid4().hex
        granted = await self._acquire(key, lease_id, want=want, cap=cap)
        if granted is None:
            yield _LocalLease(want)
            return
        held = _RedisLease(self, key, lease_id, granted)
        try:
            yield held
        finally:
            await self._release(key, held.members)

    async def _acquire(self, key: str, lease_id: str, *, want: int, cap: int) -> int | None:
        """Slots leased (at least one, waiting for it), or None when Redis failed."""
        wait = WAIT_S[0]
        while True:
            if time.monotonic() < self._skip_until:
                return None
            now_ms = int(time.time() * 1000)
            try:
                granted = int(
                    await self._take(keys=[key], args=[lease_id, now_ms, self._lease_ms, cap, want])
                )
            except (redis.RedisError, OSError) as error:
                self._fail_open(error)
                return None
            if granted > 0:
                return granted
            await asyncio.sleep(random.uniform(WAIT_S[0], wait))
            wait = min(wait * 2, WAIT_S[1])

    async def renew(self, key: str, members: list[str]) -> None:
        lapses = int(time.time() * 1000) + self._lease_ms
        try:
            await self._redis.zadd(key, dict.fromkeys(members, lapses), xx=True)
            await self._redis.pexpire(key, self._lease_ms)
        except (redis.RedisError, OSError) as error:
            self._fail_open(error)

    async def _release(self, key: str, members: list[str]) -> None:
        try:
            await self._redis.zrem(key, *members)
        except (redis.RedisError, OSError) as error:
            self._fail_open(error)  # the slots lapse by themselves

    def _fail_open(self, error: Exception) -> None:
        if time.monotonic() >= self._skip_until:
            log.warning(
                "webhook endpoint cap: Redis unavailable; each process caps its own requests meanwhile",
                extra={"error": f"{type(error).__name__}: {error}"},
            )
        self._skip_until = time.monotonic() + RETRY_AFTER_S


def connect_async(url: str, *, connections: int = 32) -> redis.asyncio.Redis:
    """The limiter's client: at most `connections` (a lease waits up to 2 s for one), short
    timeouts, so a Redis outage costs a batch little."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=connections, timeout=2.0, socket_connect_timeout=0.5, socket_timeout=0.5
    )
    return redis.asyncio.Redis.from_pool(pool)  # closing the client closes its pool
