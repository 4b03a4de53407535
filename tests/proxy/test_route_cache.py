"""The route cache answers from memory within its TTL and looks up each key once at a time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import openai
import pytest
from sqlalchemy import event

from service.errors import NotFound
from service.models.service import ModelRoute
from service.proxy.routes import RouteCache
from service.runtime import Runtime
from tests.proxy.fakes import FT_MODEL, FakeUpstream, add_fine_tuned_model


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Table:
    """A stand-in routing table that counts lookups and can hold them until released."""

    def __init__(self, *models: str) -> None:
        self.models = set(models)
        self.lookups = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self, tenant_id: str, tenant_name: str, model: str) -> ModelRoute | None:
        self.lookups += 1
        found = model in self.models  # read first, answer when released: a lookup "in flight"
        self.release.wait(5)
        return ModelRoute(model, "local", model, tenant_name, None) if found else None


async def resolve(cache: RouteCache, model: str = FT_MODEL) -> ModelRoute:
    route = await cache.resolve(tenant_id="t1", tenant_name="acme", model=model)
    assert isinstance(route, ModelRoute)
    return route


def test_a_second_request_within_the_ttl_is_answered_from_memory() -> None:
    # Given a cache in front of a table with the model
    table, clock = Table(FT_MODEL), Clock()
    cache = RouteCache(table, ttl_s=5, clock=clock)

    async def scenario() -> None:
        # When the same model is resolved twice, 4.9 s apart, then once more after the TTL
        first = await resolve(cache)
        clock.now += 4.9
        second = await resolve(cache)
        assert table.lookups == 1
        clock.now += 0.2
        await resolve(cache)

        # Then the table was read once within the TTL, and again after it
        assert first == second
        assert table.lookups == 2

    asyncio.run(scenario())


def test_a_model_that_does_not_exist_is_remembered_too() -> None:
    # Given a cache in front of an empty table
    table = Table()
    cache = RouteCache(table, clock=Clock())

    async def scenario() -> None:
        # When an unknown model is asked for twice
        for _ in range(2):
            with pytest.raises(NotFound) as raised:
                await resolve(cache)
            assert raised.value.code == "model_not_found"

    asyncio.run(scenario())

    # Then the table was read once
    assert table.lookups == 1


def test_invalidating_a_model_makes_the_next_request_read_the_table() -> None:
    # Given a cached route
    table = Table(FT_MODEL)
    cache = RouteCache(table, clock=Clock())
    asyncio.run(resolve(cache))

    # When it is invalidated (the model was deleted) and asked for again
    table.models.clear()
    cache.invalidate(tenant_id="t1", model=FT_MODEL)

    # Then the fresh answer is used
    with pytest.raises(NotFound):
        asyncio.run(resolve(cache))
    assert table.lookups == 2


def test_concurrent_misses_for_one_model_share_a_single_lookup() -> None:
    # Given a slow table
    table = Table(FT_MODEL)
    table.release.clear()
    cache = RouteCache(table, clock=Clock())

    async def scenario() -> list[ModelRoute]:
        # When fifty requests for the same model arrive together
        waiting = asyncio.gather(*(resolve(cache) for _ in range(50)))
        await asyncio.sleep(0.05)
        table.release.set()
        return await waiting

    routes = asyncio.run(scenario())

    # Then they all got the route from one lookup
    assert {route.model for route in routes} == {FT_MODEL}
    assert table.lookups == 1


def test_a_lookup_overtaken_by_an_invalidation_is_not_cached() -> None:
    # Given a lookup in flight
    table = Table(FT_MODEL)
    table.release.clear()
    cache = RouteCache(table, clock=Clock())

    async def scenario() -> None:
        in_flight = asyncio.ensure_future(resolve(cache))
        await asyncio.sleep(0.05)

        # When the model is deleted and invalidated before the lookup returns
        table.models.clear()
        cache.invalidate(tenant_id="t1", model=FT_MODEL)
        table.release.set()
        assert (await in_flight).model == FT_MODEL  # it started before the deletion

        # Then the next request does not get the stale route
        with pytest.raises(NotFound):
            await resolve(cache)

    asyncio.run(scenario())


def test_the_cache_holds_at_most_its_maximum_number_of_entries() -> None:
    # Given a cache of three entries
    models = [f"ft:m:{index}" for index in range(5)]
    table = Table(*models)
    cache = RouteCache(table, max_entries=3, clock=Clock())

    async def scenario() -> None:
        # When five models are resolved, then the first one again
        for model in models:
            await resolve(cache, model)
        await resolve(cache, models[0])

    asyncio.run(scenario())

    # Then it stayed bounded, and the oldest entry had been evicted
    assert len(cache) == 3
    assert table.lookups == 6


@pytest.fixture
def routing_queries(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "fine_tuned_models" in statement:
            statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    yield statements
    event.remove(runtime.engine, "before_cursor_execute", record)


def test_repeated_requests_for_a_model_read_the_routing_table_once(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI, routing_queries: list[str]
) -> None:
    # Given a fine-tuned model
    add_fine_tuned_model(runtime)
    routing_queries.clear()

    # When it is called ten times in a row
    for _ in range(10):
        caller.chat.completions.create(model=FT_MODEL, messages=[{"role": "user", "content": "Hi"}])

    # Then all ten reached the provider, and the routing table was read once
    assert len(upstream.calls("/v1/chat/completions")) == 10
    assert len(routing_queries) == 1
