"""Model routing for the proxy's hot path: (tenant, model) -> a route, from memory most of the time.

A route is a `ModelRoute` (a fine-tuned or base model) or a `DeploymentRoute` (a deployment's
current version, its targets and fallbacks already resolved), so a request for a deployment costs
no more than one for a model.

`RouteCache` keeps each answer (a route, or "not found") for `ttl_s` seconds in a bounded map, so a
steady stream of requests costs one database lookup per (tenant, model) per TTL per process. A miss
runs the lookup in the thread pool (the SQL driver blocks), and concurrent misses for one key share
that single lookup. The cache lives on `app.state`, created on first use.

Staleness: a model deleted or a deployment changed through this process is dropped from this cache
at once (`invalidate`), and from every other API process's within a second through Redis
(`invalidate_route`, `service.cache_changes`), as are the promotions and new models a worker
commits. While Redis is down, an entry lives at most `ttl_s` seconds (`FTM_ROUTE_CACHE_TTL_S`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.cache_changes import Change, publish
from service.deployments.routing import DeploymentRoute, load_deployment_route
from service.models.service import Catalog, ModelRoute, find_route, model_not_found
from service.runtime import Runtime
from service.ttl_cache import SingleFlightTTLCache

ROUTE_CACHE_TTL_S = 5.0
ROUTE_CACHE_MAX_ENTRIES = 10_000

Key = tuple[str, str]  # (tenant_id, model)
Route = ModelRoute | DeploymentRoute
Lookup = Callable[[str, str, str], Route | None]  # (tenant_id, tenant_name, model) -> route


class RouteCache:
    """A TTL cache of model routes with single-flight misses; safe to invalidate from any thread."""

    def __init__(
        self,
        lookup: Lookup,
        *,
        ttl_s: float = ROUTE_CACHE_TTL_S,
        max_entries: int = ROUTE_CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        # None kept: the model does not exist for this tenant
        self._cache: SingleFlightTTLCache[Key, Route] = SingleFlightTTLCache(
            ttl_s=ttl_s, max_entries=max_entries, clock=clock
        )

    async def resolve(self, *, tenant_id: str, tenant_name: str, model: str) -> Route:
        """The route for `model` as `tenant_id` sees it; NotFound (`model_not_found`) if none."""
        route = await self._cache.get((tenant_id, model), self._lookup, tenant_id, tenant_name, model)
        if route is None:
            raise model_not_found(model)
        return route

    def cached(self, *, tenant_id: str, model: str) -> Route | None:
        """`resolve`'s answer while it is in memory, else None (then `resolve` it)."""
        entry = self._cache.fresh((tenant_id, model))
        if entry is None:
            return None
        if entry.value is None:
            raise model_not_found(model)
        return entry.value

    def invalidate(self, *, tenant_id: str, model: str) -> None:
        """Forget `model` (a model or a deployment's name) for `tenant_id` in this process (e.g.
        after deleting it)."""
        self._cache.invalidate((tenant_id, model))

    def __len__(self) -> int:
        return len(self._cache)


def lookup_route(
    sessions: sessionmaker[Session], catalog: Catalog, tenant_id: str, tenant_name: str, model: str
) -> Route | None:
    """One read of the routing table (blocking; runs in the thread pool): a model, else a
    deployment (a deployment's name is neither `ft:…` nor a base model's, so they rarely meet; if a
    provider's model name ever equals one, the model wins)."""
    with sessions() as session:
        route = find_route(
            session,
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            model=model,
            catalog=catalog,
        )
        if route is not None or model.startswith("ft:") or catalog.provider_for(model) is not None:
            return route
        return load_deployment_route(
            session,
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            name=model,
            catalog=catalog,
        )


def get_route_cache(state: Any) -> RouteCache:
    """The app's route cache, kept on its `state` (`app.state`), created on first use (on the
    event loop, so without a race)."""
    cache: RouteCache | None = getattr(state, "route_cache", None)
    if cache is None:
        runtime: Runtime = state.runtime
        settings = runtime.settings
        cache = RouteCache(
            partial(lookup_route, runtime.sessions, runtime.providers),
            ttl_s=settings.route_cache_ttl_s,
        )
        state.route_cache = cache
    return cache


def forget_route(state: Any, *, tenant_id: str, model: str) -> None:
    """Drop a cached route in this process if the app has a route cache yet (from any thread)."""
    cache: RouteCache | None = getattr(state, "route_cache", None)
    if cache is not None:
        cache.invalidate(tenant_id=tenant_id, model=model)


def invalidate_route(state: Any, *, tenant_id: str, model: str) -> None:
    """After a committed change to `model` (a model or a deployment's name): drop it here at once,
    and in every other API process within a second (`service.cache_changes`)."""
    forget_route(state, tenant_id=tenant_id, model=model)
    runtime: Runtime = state.runtime
    publish(runtime.redis, Change(tenant_id=tenant_id, model=model))
