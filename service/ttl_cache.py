"""A bounded in-process TTL cache whose misses are single-flight, for the proxy's hot path.

The proxy keeps answers it would otherwise read from the database on every request (a model's
route, a tenant's own provider credentials) in memory for `ttl_s` seconds, "not found" (None)
included. A miss runs the blocking lookup in the thread pool; concurrent misses for one key share
that one lookup. Invalidation may come from any thread (the cache-change listener runs in one): it
drops the entry and bumps a generation, so a lookup that started before it is returned to its
waiters but not kept. The oldest entries go first past `max_entries`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import anyio.to_thread

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class Entry(Generic[V]):
    expires_at: float
    value: V | None


class SingleFlightTTLCache(Generic[K, V]):
    """Values by key for `ttl_s` seconds; `get` loads a missing or expired one once, however many
    callers ask for it at the same moment."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, Entry[V]] = OrderedDict()
        self._pending: dict[K, asyncio.Task[V | None]] = {}
        self._generation = 0  # bumped by every invalidation; a lookup started earlier is not kept
        self._lock = threading.Lock()

    async def get(self, key: K, load: Callable[..., V | None], *args: Any) -> V | None:
        """The value for `key`, from memory or, on a miss, from `load(*args)` (blocking; run in
        the thread pool, shared with concurrent misses for `key`). The arguments are passed rather
        than bound so that a hit allocates nothing."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at > self._clock():
                return entry.value
            task = self._pending.get(key) or self._start_load(key, partial(load, *args))
        # shield: one caller going away must not cancel the lookup the others wait for
        return await asyncio.shield(task)

    def fresh(self, key: K) -> Entry[V] | None:
        """The entry of `key` while it is live, else None (then `get` it): one dictionary read, no
        lock, no coroutine, for the hot path's hits."""
        entry = self._entries.get(key)
        return entry if entry is not None and entry.expires_at > self._clock() else None

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._pending.pop(key, None)
            self._generation += 1

    def __len__(self) -> int:
        return len(self._entries)

    def _start_load(self, key: K, load: Callable[[], V | None]) -> asyncio.Task[V | None]:
        task = asyncio.ensure_future(self._load(key, load, self._generation))
        self._pending[key] = task
        task.add_done_callback(partial(self._forget_pending, key))
        return task

    async def _load(self, key: K, load: Callable[[], V | None], generation: int) -> V | None:
        value = await anyio.to_thread.run_sync(load)
        with self._lock:
            if generation == self._generation:
                self._entries[key] = Entry(self._clock() + self._ttl_s, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return value

    def _forget_pending(self, key: K, task: asyncio.Task[V | None]) -> None:
        with self._lock:
            if self._pending.get(key) is task:
                del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved here so a failure nobody awaited any more is not reported twice
