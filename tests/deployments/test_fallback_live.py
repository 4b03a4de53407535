"""Fallback against the local provider with faults dialled in: the primary's failure is answered by
the next model in the deployment's fallback list."""

from __future__ import annotations

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer
from tests.jobs.conftest import emulator, emulator_url, sdk, settings

__all__ = ["emulator", "emulator_url", "sdk", "settings"]

PRIMARY = "gpt-4o-mini-2024-07-18"
FALLBACK = "gpt-4.1-mini-2025-04-14"


@pytest.mark.parametrize(
    ("fault", "failure"),
    [
        ({"server_error_next": 1, "server_error_status": 503}, "answered 503"),
        ({"rate_limit_next": 1}, "answered 429"),
        ({"drop_next": 1}, "failed (502)"),
    ],
    ids=["503", "429", "dropped"],
)
@pytest.mark.parametrize("stream", [False, True])
def test_the_fallback_answers_when_the_primary_fails(
    client: TestClient,
    sdk: openai.OpenAI,
    tenant_key: str,
    emulator: httpx.Client,
    fault: dict[str, int],
    failure: str,
    stream: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a deployment with a fallback, and a provider whose next inference request fails
    created = client.post(
        "/v1/deployments",
        headers=bearer(tenant_key),
        json={"name": "support-bot", "targets": [{"model": PRIMARY}], "fallbacks": [FALLBACK]},
    )
    assert created.status_code == 200, created.text
    emulator.post("/_emulator/faults", json={**fault, "paths": ["/v1/chat/completions"]})

    # When the deployment is asked
    raw = sdk.chat.completions.with_raw_response.create(
        model="support-bot", messages=[{"role": "user", "content": "Hi"}], stream=stream
    )
    raw.parse()

    # Then the primary was tried and failed, and the fallback answered
    fell_back = [r.getMessage() for r in caplog.records if "falling back" in r.getMessage()]
    assert fell_back == [f"proxy support-bot: {PRIMARY} {failure}; falling back"]
    assert raw.status_code == 200
    assert raw.headers["x-ftm-model"] == FALLBACK
