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

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.providers.credentials import CredentialsCipher
from service.providers.credentials_store import load_credentials
from service.runtime import Runtime
from service.ttl_cache import Entry, SingleFlightTTLCache

MAX_ENTRIES = 10_000

Key = tuple[str, str]  # (tenant_id, provider)
Auth = Mapping[str, str]  # the headers that carry a tenant's credentials
Lookup = Callable[[str, str], Auth | None]


class CredentialsCache:
    """A TTL cache of tenants' credential headers with single-flight misses; safe to invalidate
    from any thread. None: the tenant uses the operator's credentials there."""

    def __init__(
        self,
        lookup: Lookup,
        *,
        ttl_s: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._cache: SingleFlightTTLCache[Key, Auth] = SingleFlightTTLCache(
            ttl_s=ttl_s, max_entries=max_entries, clock=clock
        )

    async def auth(self, tenant_id: str, provider: str) -> Auth | None:
        """The headers of `tenant_id`'s own credentials at `provider`; None: the operator's."""
        return await self._cache.get((tenant_id, provider), self._lookup, tenant_id, provider)

    def cached(self, tenant_id: str, provider: str) -> Entry[Auth] | None:
        """`auth`'s answer (the entry's value) while it is in memory, else None (then ask `auth`)."""
        return self._cache.fresh((tenant_id, provider))

    def invalidate(self, tenant_id: str, provider: str) -> None:
        self._cache.invalidate((tenant_id, provider))

    def __len__(self) -> int:
        return len(self._cache)


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
