"""Tenants' own provider credentials for the proxy's hot path, from memory.

The proxy sends a tenant's request to a provider with the tenant's credentials when it set some
(`service.providers.credentials_store`), as per-request headers on the provider's pooled relay
client. Reading (and decrypting) them per request would cost a database query each; instead each
API process keeps the answer per (tenant, provider), "none" included, for `ttl_s` seconds. A miss
runs the lookup in the thread pool, and concurrent misses for one key share it.

Staleness: setting or deleting credentials drops the entry in the process that did it at once, and
in every other API process within a second through the cache-change channel
(`service.cache_changes`, `Change(tenant_id, provider=…)`). While Redis is down an entry lives at
most `ttl_s` (`FTM_ROUTE_CACHE_TTL_S`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker

from service.providers.credentials import CredentialsCipher
from service.providers.credentials_store import load_credentials
from service.runtime import Runtime

MAX_ENTRIES = 10_000

Key = tuple[str, str]  # (tenant_id, provider)
Auth = Mapping[str, str]  # the headers that carry a tenant's credentials
Lookup = Callable[[str, str], Auth | None]


@dataclass(frozen=True)
class _Entry:
    expires_at: float
    auth: Auth | None  # None: the tenant uses the operator's credentials there


class CredentialsCache:
    """A TTL cache of tenants' credential headers with single-flight misses; safe to invalidate
    from any thread."""

    def __init__(
        self,
        lookup: Lookup,
        *,
        ttl_s: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._pending: dict[Key, asyncio.Task[Auth | None]] = {}
        self._generation = 0  # bumped by every invalidation; a lookup started earlier is not kept
        self._lock = threading.Lock()

    async def auth(self, tenant_id: str, provider: str) -> Auth | None:
        """The headers of `tenant_id`'s own credentials at `provider`; None: the operator's."""
        key = (tenant_id, provider)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at > self._clock():
                return entry.auth
            task = self._pending.get(key) or self._start_load(key)
        # shield: one caller going away must not cancel the lookup the others wait for
        return await asyncio.shield(task)

    def invalidate(self, tenant_id: str, provider: str) -> None:
        key = (tenant_id, provider)
        with self._lock:
            self._entries.pop(key, None)
            self._pending.pop(key, None)
            self._generation += 1

    def __len__(self) -> int:
        return len(self._entries)

    def _start_load(self, key: Key) -> asyncio.Task[Auth | None]:
        task = asyncio.ensure_future(self._load(key, self._generation))
        self._pending[key] = task
        task.add_done_callback(partial(self._forget_pending, key))
        return task

    async def _load(self, key: Key, generation: int) -> Auth | None:
        auth = await anyio.to_thread.run_sync(self._lookup, *key)
        with self._lock:
            if generation == self._generation:
                self._entries[key] = _Entry(self._clock() + self._ttl_s, auth)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return auth

    def _forget_pending(self, key: Key, task: asyncio.Task[Auth | None]) -> None:
        with self._lock:
            if self._pending.get(key) is task:
                del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved here so a failure nobody awaited any more is not reported twice


def lookup_auth(
    sessions: sessionmaker[Session], cipher: CredentialsCipher, tenant_id: str, provider: str
) -> Auth | None:
    """One read (blocking; runs in the thread pool)."""
    with sessions() as session:
        credentials = load_credentials(session, cipher, tenant_id=tenant_id, provider=provider)
    return credentials.headers() if credentials is not None else None


def get_credentials_cache(state: Any) -> CredentialsCache:
    """The app's cache, kept on its `state` (`app.state`), created on first use (on the event
    loop, so without a race)."""
    cache: CredentialsCache | None = getattr(state, "credentials_cache", None)
    if cache is None:
        runtime: Runtime = state.runtime
        cache = CredentialsCache(
            partial(lookup_auth, runtime.sessions, runtime.providers.cipher),
            ttl_s=runtime.settings.route_cache_ttl_s,
        )
        state.credentials_cache = cache
    return cache


def forget_credentials(state: Any, *, tenant_id: str, provider: str) -> None:
    """Drop a cached entry in this process if the app has the cache yet (from any thread)."""
    cache: CredentialsCache | None = getattr(state, "credentials_cache", None)
    if cache is not None:
        cache.invalidate(tenant_id, provider)
