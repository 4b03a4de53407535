"""Per-minute request and token limits, shared by every API process and replica through Redis,
kept off the request's path by leases.

Each counter (a key's or tenant's requests or tokens) is a sliding one-minute window in Redis
(`window.lua`). A process does not ask Redis about every request: it takes a *lease*, a share of
the counter's minute (`lease_size`: 1% of the limit, at least one unit) that Redis counts at once,
and admits requests locally from it. Leases are topped up in the background (when half spent or
half a second old), the wants of every counter and of every request waiting gathered into one
Lua call, so a steady stream of requests costs about one round trip per counter per half second
per process, none of them on a request's path; a request waits for Redis only when its process
holds no units for it (its first request, a limit under `LEASE_SHARE` units a minute, a request
bigger than what is in hand, or a limit reached).

What this costs in precision, per counter:
- **Overshoot: none beyond the sliding window's own.** Every admitted unit was counted in Redis
  before it was admitted, so all processes together never admit more than the window counts. A
  counted unit is spent at most `LEASE_S` (1 s) after it was counted, and never after the end of
  the minute it was counted in: the window's figures are late by at most a second.
- **Undershoot**: units a process holds but has not spent count as used for everyone else, so a
  caller can be refused while up to `processes x lease_size` units (1% of the limit each, at
  most 2 leases per process) sit unspent in other processes' leases. They are given back when the
  lease expires (at most `LEASE_S` later; an idle process gives them back at its next round trip
  or its shutdown, else they fade with the window).
- Limits under `LEASE_SHARE` (100) a minute have one-unit leases: a process holds at most one
  unit it has not spent, so with one process the figures are exact.
- `x-ratelimit-remaining-*` is what this process last heard from Redis, less what it has spent
  since: other processes' spending shows at its next top-up (within half a second).

Token limits count an estimate first; `settle` corrects it to the actual usage in the lease it
was spent from while that lease is live (no I/O: an over-estimate goes back into the lease), else
in Redis, the corrections of many requests (and the units of expired leases given back) summed
into one pipelined call.

Redis unreachable or slow: the request is served without limits (fail open), the failure is
logged (once per outage) and counted in `ftm_rate_limit_unavailable_total`, and for `breaker_s`
after it Redis is not tried at all, so no request waits for a timeout while it is down. Leases in
hand are still spent while they last.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
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
from service.limits.leases import MINUTE_MS, REFRESH_S, Lease, lease_size
from service.limits.policy import Limit, limits_for

log = logging.getLogger(__name__)
SCRIPT = files("service.limits").joinpath("window.lua").read_text()
CORRECTION_DELAY_S = 0.05
WINDOW_KEY_TTL_MS = 130_000  # a minute's counter outlives the next minute, where it still weighs


def duration(ms: int) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `250ms`."""
    if ms < 1000:
        return f"{ms}ms"
    return _seconds(math.ceil(ms / 1000))


@cache  # a handful of values (a reset is at most a minute away), formatted once each
def _seconds(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


@dataclass(slots=True)
class Quota:
    """What `admit` decided: the `x-ratelimit-*` headers, and the token estimate spent from which
    leases (one per token counter, in its order; none without a token limit), to be corrected."""

    headers: dict[str, str] = field(default_factory=dict)
    estimate: int = 0
    token_leases: tuple[Lease, ...] = ()


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


@dataclass(frozen=True)
class _Counter:
    """One of a caller's counters: its limit, its name in Redis and its lease size."""

    limit: Limit
    key: str
    size: int
    requests: bool
    per_minute: int
    header_names: tuple[str, str, str]  # x-ratelimit-{limit,remaining,reset}-<kind>
    limit_text: str  # the x-ratelimit-limit-<kind> header's value


MAX_CACHED_CALLERS = 10_000


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
        self._counters: dict[tuple[Any, ...], tuple[_Counter, ...]] = {}
        self._leases: dict[str, list[Lease]] = {}  # counter -> its leases, oldest first (at most 2)
        self._asked: dict[str, _Counter] = {}  # counters to top up in the next round trip
        self._wanted: dict[str, int] = {}  # units the requests waiting for that round trip need
        self._topping: set[str] = set()  # counters asked for or in flight (no second ask)
        self._round: asyncio.Future[bool] | None = None  # the next round trip, awaited by requests
        self._granting: asyncio.Task[None] | None = None
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

    def admit_from_leases(self, caller: Principal, tokens: int) -> Quota | None:
        """`admit`'s answer when it needs no I/O (no limits, or the leases in hand admit the
        request), else None: then `admit` it. Most requests take this path, without a coroutine."""
        counters = self._counters_of(caller)
        if not counters:
            return NO_LIMITS
        return self._spend(counters, tokens, self._clock())

    async def admit(self, caller: Principal, tokens: int) -> Quota:
        """Count this request against the caller's limits; RateLimitExceeded (429) when over one."""
        counters = self._counters_of(caller)
        if not counters:
            return NO_LIMITS
        quota = self._spend(counters, tokens, self._clock())
        if quota is not None:
            return quota
        if self._clock() < self._skip_until or not await self._wait_for_units(counters, tokens):
            self.metrics.unavailable.inc()
            return NO_LIMITS
        now = self._clock()
        quota = self._spend(counters, tokens, now)
        if quota is not None:
            return quota
        raise self._refusal(caller, counters, tokens, now)

    def settle(self, quota: Quota, actual_tokens: int) -> None:
        """Correct the token counters by the actual usage. Where the lease the estimate came from
        is still live, in memory: what was over-estimated goes back into it (it stays counted in
        Redis, to be spent or given back), what was under-estimated is taken from it. Any rest
        is sent to Redis in the background: corrections are summed per counter and sent together
        (one pipeline) `CORRECTION_DELAY_S` after the first one, never awaited by a request."""
        delta = actual_tokens - quota.estimate
        if not quota.token_leases or not delta:
            return
        now = self._clock()
        for lease in quota.token_leases:
            rest = delta
            if now < lease.expires_at and not lease.dropped:  # still this process's to spend
                if delta < 0:
                    lease.units -= delta
                    rest = 0
                else:
                    taken = min(lease.units, delta)
                    lease.units -= taken
                    rest = delta - taken
            if rest:
                for live in self._leases.get(lease.counted.rpartition(":")[0], ()):
                    if live.window == lease.window:
                        live.current += rest  # so this process's headers show it at once
                self._correct(lease.counted, rest)

    async def send_corrections(self) -> None:
        """Send the pending token corrections now (shutdown; tests)."""
        if self._correcting is not None:
            self._correcting.cancel()
            await asyncio.gather(self._correcting, return_exceptions=True)
        await self._adjust()

    async def top_ups_done(self) -> None:
        """Wait for the round trips asked for so far (shutdown; tests)."""
        while self._granting is not None:
            await asyncio.gather(self._granting, return_exceptions=True)

    async def aclose(self) -> None:
        await self.top_ups_done()
        for leases in self._leases.values():  # unspent units go back for the other processes
            for lease in leases:
                self._give_back(lease)
        self._leases.clear()
        await self.send_corrections()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _counters_of(self, caller: Principal) -> tuple[_Counter, ...]:
        """The caller's counters, worked out once per key and set of limits."""
        cache_key = (
            caller.key_id,
            caller.tenant_id,
            caller.key_rpm,
            caller.key_tpm,
            caller.tenant_rpm,
            caller.tenant_tpm,
        )
        counters = self._counters.get(cache_key)
        if counters is None:
            if len(self._counters) >= MAX_CACHED_CALLERS:
                self._counters.clear()
            counters = self._counters[cache_key] = tuple(
                _Counter(
                    limit,
                    f"ftm:rl:{limit.scope}:{limit.owner}:{limit.kind}",
                    lease_size(limit.per_minute),
                    limit.kind == "requests",
                    limit.per_minute,
                    (
                        f"x-ratelimit-limit-{limit.kind}",
                        f"x-ratelimit-remaining-{limit.kind}",
                        f"x-ratelimit-reset-{limit.kind}",
                    ),
                    str(limit.per_minute),
                )
                for limit in limits_for(caller, self._settings)
            )
        return counters

    def _spend(self, counters: Sequence[_Counter], tokens: int, now: float) -> Quota | None:
        """Admit the request from the leases in hand (no I/O), or None when one lacks the units."""
        leases = self._leases
        picked: list[Lease] = []
        for counter in counters:
            cost = 1 if counter.requests else tokens
            for lease in leases.get(counter.key, ()):
                if lease.units >= cost and lease.per_minute == counter.per_minute and now < lease.expires_at:
                    picked.append(lease)
                    break
            else:
                return None
        # The tightest counter of each kind names the headers: (remaining, counter, reset ms).
        requests: tuple[int, _Counter, int] | None = None
        tokens_left: tuple[int, _Counter, int] | None = None
        token_leases: list[Lease] = []
        topping = self._topping
        for counter, lease in zip(counters, picked, strict=True):
            held = leases[counter.key]
            newest = held[-1]
            if counter.requests:
                lease.units -= 1
            else:
                lease.units -= tokens
                token_leases.append(lease)
            unspent = newest.units if len(held) == 1 else _unspent(held, now)
            # newest.reset_ms(now) and newest.used_at(reset_ms, unspent), written out: this loop
            # runs for every counter of every request
            reset_ms = MINUTE_MS - newest.elapsed_ms - int((now - newest.granted_at) * 1000)
            if reset_ms < 0:
                reset_ms = 0
            used = newest.current + newest.previous * reset_ms // MINUTE_MS - unspent
            remaining = counter.per_minute - used
            if counter.requests:
                if requests is None or remaining < requests[0]:
                    requests = (remaining, counter, reset_ms)
            elif tokens_left is None or remaining < tokens_left[0]:
                tokens_left = (remaining, counter, reset_ms)
            if counter.key not in topping and (
                unspent * 2 < counter.size or now >= newest.granted_at + REFRESH_S
            ):
                self._ask(counter, 0)
        headers: dict[str, str] = {}
        for tightest in (requests, tokens_left):
            if tightest is not None:
                remaining, counter, reset_ms = tightest
                limit_name, remaining_name, reset_name = counter.header_names
                headers[limit_name] = counter.limit_text
                headers[remaining_name] = str(remaining) if remaining > 0 else "0"
                headers[reset_name] = duration(reset_ms)
        return Quota(headers, tokens, tuple(token_leases))

    def _ask(self, counter: _Counter, units: int) -> None:
        """Have `counter` topped up in the next round trip (`units`: what a waiting request needs)."""
        self._asked[counter.key] = counter
        self._topping.add(counter.key)
        if units:
            self._wanted[counter.key] = self._wanted.get(counter.key, 0) + units
        if self._granting is None:
            self._granting = asyncio.get_running_loop().create_task(self._grant())

    async def _wait_for_units(self, counters: Sequence[_Counter], tokens: int) -> bool:
        """Ask for this request's units in the next round trip and wait for it; False when Redis
        failed (or was skipped)."""
        if self._round is None:
            self._round = asyncio.get_running_loop().create_future()
        round_trip = self._round
        for counter in counters:
            self._ask(counter, 1 if counter.requests else tokens)
        # shield: a request going away must not cancel the round trip others wait for
        return await asyncio.shield(round_trip)

    async def _grant(self) -> None:
        """Run round trips while counters are asked for, each for all of them at once."""
        try:
            while self._asked:
                asked, self._asked = self._asked, {}
                wanted, self._wanted = self._wanted, {}
                round_trip, self._round = self._round, None
                granted = False  # cancelled (the loop is closing): the waiters serve without limits
                try:
                    granted = await self._grant_round(asked, wanted)
                finally:
                    self._topping.difference_update(asked)
                    if round_trip is not None and not round_trip.done():
                        round_trip.set_result(granted)
        finally:
            self._granting = None

    async def _grant_round(self, asked: dict[str, _Counter], wanted: dict[str, int]) -> bool:
        if self._clock() < self._skip_until:
            return False
        keys = list(asked)
        args: list[int] = []
        for key, counter in asked.items():
            args += [counter.limit.per_minute, max(counter.size, wanted.get(key, 0))]
        try:
            reply = await self._run(keys, args)
        except (TimeoutError, RedisError, OSError) as error:
            self._failed(error)
            return False
        self._outage_logged = False
        now = self._clock()
        window, elapsed_ms = int(reply[0]), int(reply[1])
        for index, (key, counter) in enumerate(asked.items()):
            granted, current, previous = (int(value) for value in reply[2 + 3 * index : 5 + 3 * index])
            lease = Lease(
                counter.limit.per_minute,
                window,
                granted,
                current,
                previous,
                now,
                elapsed_ms,
                f"{key}:{window}",
            )
            held = self._leases.get(key, ())
            # at most two leases: the newest one and the one before, if it is live and not spent
            kept = [live for live in held if live.live(now) and live.units > 0][-1:]
            for old in held:
                if not any(old is other for other in kept):
                    self._give_back(old)
            self._leases[key] = [*kept, lease]
        return True

    def _give_back(self, lease: Lease) -> None:
        """The lease is no longer spent from: its units go back to Redis for the other processes."""
        lease.dropped = True
        if lease.units > 0:
            self._correct(lease.counted, -lease.units)
            lease.units = 0

    def _correct(self, counted: str, delta: int) -> None:
        self._corrections[counted] = self._corrections.get(counted, 0) + delta
        if self._correcting is None:
            self._correcting = asyncio.get_running_loop().create_task(self._send_corrections())

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
                    pipe.pexpire(key, WINDOW_KEY_TTL_MS)  # a counter corrected after it expired
                await pipe.execute()
        except (TimeoutError, RedisError, OSError) as error:
            self._failed(error)  # a counter stays at its estimate: never more than one minute's worth

    def _failed(self, error: BaseException) -> None:
        self._skip_until = self._clock() + self._settings.rate_limit_breaker_s
        if not self._outage_logged:
            self._outage_logged = True
            log.warning(
                "rate limits unavailable (%s: %s); serving without them, Redis retried every %s s",
                type(error).__name__,
                error,
                self._settings.rate_limit_breaker_s,
            )

    def _refusal(
        self, caller: Principal, counters: Sequence[_Counter], tokens: int, now: float
    ) -> RateLimitExceeded:
        """The 429 for the first counter that lacks the units, with every counter's headers."""
        headers: dict[str, str] = {}
        refusing: tuple[_Counter, Lease] | None = None
        for counter in counters:
            cost = 1 if counter.requests else tokens
            leases = self._leases.get(counter.key)
            if not leases:
                continue
            newest = leases[-1]
            unspent = sum(held.units for held in leases if held.live(now))
            kind = counter.limit.kind
            remaining = max(0, counter.limit.per_minute - newest.used(now, unspent))
            if int(headers.get(f"x-ratelimit-remaining-{kind}", remaining + 1)) > remaining:
                headers[f"x-ratelimit-limit-{kind}"] = str(counter.limit.per_minute)
                headers[f"x-ratelimit-remaining-{kind}"] = str(remaining)
                headers[f"x-ratelimit-reset-{kind}"] = duration(newest.reset_ms(now))
            if refusing is None and not any(
                held.fits(counter.limit.per_minute, cost, now) for held in leases
            ):
                refusing = (counter, newest)
        assert refusing is not None, "refused while every counter had the units"
        counter, newest = refusing
        limit = counter.limit
        self.metrics.refused.labels(caller.tenant_id, limit.kind).inc()
        used = newest.used(now, 0)
        retry_s = max(1, math.ceil(newest.retry_ms(1 if counter.requests else tokens, now) / 1000))
        per = "RPM" if limit.kind == "requests" else "TPM"
        return RateLimitExceeded(
            f"Rate limit reached for {limit.kind} per minute ({per}) on this {limit.scope}: limit "
            f"{limit.per_minute}, used {used}. Please try again in {retry_s}s.",
            kind=limit.kind,
            headers={**headers, "Retry-After": str(retry_s)},
        )


def _unspent(leases: Sequence[Lease], now: float) -> int:
    """The units of `leases` still to spend."""
    return sum(lease.units for lease in leases if now < lease.expires_at)
