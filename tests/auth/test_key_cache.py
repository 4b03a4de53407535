"""The key cache on the hot path: requests in flight when an entry is missing share one lookup."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from service.auth.service import Authenticator, Principal
from service.errors import AuthenticationFailed
from service.runtime import Runtime
from tests.conftest import make_key


@pytest.fixture
def key_queries(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "api_keys" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    yield statements
    event.remove(runtime.engine, "before_cursor_execute", record)


async def _check_many(authenticator: Authenticator, key: str, times: int) -> list[Principal]:
    return await asyncio.gather(*(authenticator.check(key) for _ in range(times)))


def test_concurrent_requests_with_an_uncached_key_share_one_lookup(
    runtime: Runtime, key_queries: list[str]
) -> None:
    # Given a valid key nobody has used yet
    key = make_key(runtime)
    authenticator = Authenticator(runtime.sessions, ttl_s=60)

    # When 32 requests with it arrive at once
    principals = asyncio.run(_check_many(authenticator, key, 32))

    # Then all are authenticated as its tenant by one read of the keys
    assert {principal.tenant_name for principal in principals} == {"acme"}
    assert len(key_queries) == 1


def test_concurrent_requests_with_a_wrong_key_are_all_refused(runtime: Runtime) -> None:
    authenticator = Authenticator(runtime.sessions, ttl_s=60)

    async def many() -> list[Principal | BaseException]:
        checks = (authenticator.check("ftm_not_a_key") for _ in range(8))
        return await asyncio.gather(*checks, return_exceptions=True)

    outcomes = asyncio.run(many())

    assert all(isinstance(outcome, AuthenticationFailed) for outcome in outcomes)
