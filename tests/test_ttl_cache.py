"""The proxy's in-process cache: one lookup for concurrent misses, kept for its TTL, dropped by an
invalidation (even one that lands while a lookup runs), bounded."""

from __future__ import annotations

import asyncio
import threading

from service.ttl_cache import SingleFlightTTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Table:
    """A blocking lookup that counts its calls; `gate` holds them until set."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.values: dict[str, str | None] = {}

    def lookup(self, key: str) -> str | None:
        self.calls += 1
        value = self.values.get(key)
        self.started.set()
        self.gate.wait(5)
        return value


def test_concurrent_misses_share_one_lookup_and_the_answer_lives_for_its_ttl() -> None:
    clock, table = Clock(), Table()
    table.values["a"] = "route-a"
    cache: SingleFlightTTLCache[str, str] = SingleFlightTTLCache(ttl_s=5, max_entries=10, clock=clock)

    async def scenario() -> list[str | None]:
        answers = await asyncio.gather(*(cache.get("a", table.lookup, "a") for _ in range(20)))
        clock.now = 4.9
        answers.append(await cache.get("a", table.lookup, "a"))
        return answers

    assert asyncio.run(scenario()) == ["route-a"] * 21
    assert table.calls == 1
    clock.now = 5.1
    assert asyncio.run(cache.get("a", table.lookup, "a")) == "route-a"
    assert table.calls == 2


def test_not_found_is_kept_too_and_an_invalidation_drops_it() -> None:
    table = Table()
    cache: SingleFlightTTLCache[str, str] = SingleFlightTTLCache(ttl_s=60, max_entries=10)

    assert asyncio.run(cache.get("b", table.lookup, "b")) is None
    table.values["b"] = "route-b"
    assert asyncio.run(cache.get("b", table.lookup, "b")) is None  # still the cached "not found"
    cache.invalidate("b")
    assert asyncio.run(cache.get("b", table.lookup, "b")) == "route-b"
    assert table.calls == 2


def test_an_invalidation_during_a_lookup_keeps_its_answer_out_of_the_cache() -> None:
    table = Table()
    table.values["c"] = "old"
    cache: SingleFlightTTLCache[str, str] = SingleFlightTTLCache(ttl_s=60, max_entries=10)

    async def scenario() -> str | None:
        table.gate.clear()
        waiting = asyncio.ensure_future(cache.get("c", table.lookup, "c"))
        assert await asyncio.to_thread(table.started.wait, 5)
        cache.invalidate("c")  # the change committed while the old value was being read
        table.values["c"] = "new"
        table.gate.set()
        return await waiting

    assert asyncio.run(scenario()) == "old"  # its waiters get what was read
    assert asyncio.run(cache.get("c", table.lookup, "c")) == "new"  # but it was not kept
    assert table.calls == 2


def test_past_its_bound_the_oldest_entry_goes_first() -> None:
    table = Table()
    cache: SingleFlightTTLCache[str, str] = SingleFlightTTLCache(ttl_s=60, max_entries=2)

    for key in ("x", "y", "z"):
        asyncio.run(cache.get(key, table.lookup, key))
    asyncio.run(cache.get("z", table.lookup, "z"))
    asyncio.run(cache.get("x", table.lookup, "x"))

    assert len(cache) == 2
    assert table.calls == 4  # x was dropped for z, so it was read again; z was not


def test_fresh_gives_a_live_entry_without_a_lookup_and_nothing_once_expired_or_dropped() -> None:
    clock, table = Clock(), Table()
    table.values["a"] = "route-a"
    cache: SingleFlightTTLCache[str, str] = SingleFlightTTLCache(ttl_s=5, max_entries=10, clock=clock)

    assert cache.fresh("a") is None  # never looked up
    asyncio.run(cache.get("a", table.lookup, "a"))
    entry = cache.fresh("a")
    assert entry is not None
    assert entry.value == "route-a"
    clock.now = 5.1
    assert cache.fresh("a") is None  # expired
    asyncio.run(cache.get("a", table.lookup, "a"))
    cache.invalidate("a")
    assert cache.fresh("a") is None
    assert table.calls == 2
