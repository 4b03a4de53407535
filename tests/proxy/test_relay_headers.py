"""The relay client takes headers per request (a tenant's own provider credentials, say) beside
its own, for that request only."""

from __future__ import annotations

import asyncio
import json

from service.providers.relay import RelayClient
from tests.proxy.fakes import FakeUpstream
from tests.servers import serve

BODY = json.dumps({"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": "hi"}]})


def test_headers_given_for_one_request_replace_the_clients_own_for_that_request_only() -> None:
    upstream = FakeUpstream()
    with serve(upstream.app) as url:
        relay = RelayClient("local", base_url=f"{url}/v1", api_key="sk-service", timeout_s=10)

        async def two_requests() -> list[int]:
            statuses = []
            for headers in ({"Authorization": "Bearer sk-tenant"}, None):
                answer = await relay.forward(
                    "/chat/completions", BODY.encode(), stream=False, headers=headers
                )
                statuses.append(answer.status)
            await relay.aclose()
            return statuses

        statuses = asyncio.run(two_requests())

    calls = upstream.calls("/v1/chat/completions")
    assert statuses == [200, 200]
    assert [call.authorization for call in calls] == ["Bearer sk-tenant", "Bearer sk-service"]
