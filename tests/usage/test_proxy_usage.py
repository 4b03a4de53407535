"""Usage recorded from real SDK calls through the proxy equals what the provider reported, for JSON
answers and streams, and a caller's stream is what it would have been without the accounting."""

from __future__ import annotations

import json

import openai
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai.types.chat import ChatCompletionMessageParam

from service.runtime import Runtime
from tests.conftest import bearer, sdk_for
from tests.proxy.fakes import FT_MODEL, FakeUpstream, add_fine_tuned_model, openai_error
from tests.usage.conftest import flushed_usage, totals

BASE = "gpt-4o-mini-2024-07-18"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "When was Jonny Whizbang born?"}]


def reported(upstream: FakeUpstream) -> dict[str, int]:
    return {
        "input_tokens": sum(usage["prompt_tokens"] for usage in upstream.reported_usage),
        "output_tokens": sum(usage["completion_tokens"] for usage in upstream.reported_usage),
    }


def test_usage_totals_equal_what_the_provider_reported_for_json_and_streams(
    app: FastAPI, client: TestClient, runtime: Runtime, tenant_key: str, upstream: FakeUpstream
) -> None:
    add_fine_tuned_model(runtime)
    sdk = sdk_for(client, tenant_key)
    sdk.chat.completions.create(model=FT_MODEL, messages=MESSAGES)
    sdk.completions.create(model=BASE, prompt="Jonny Whizbang was born")
    for _ in sdk.chat.completions.create(model=FT_MODEL, messages=MESSAGES, stream=True):
        pass
    for _ in sdk.chat.completions.create(
        model=BASE,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    ):
        pass

    usage = totals(flushed_usage(app, client, tenant_key))

    assert len(upstream.reported_usage) == 4
    assert usage == {"requests": 4, "errors": 0, **reported(upstream)}


def test_a_stream_the_caller_did_not_ask_usage_for_is_recorded_and_relayed_without_it(
    app: FastAPI, client: TestClient, tenant_key: str, upstream: FakeUpstream
) -> None:
    sdk = sdk_for(client, tenant_key)

    chunks = list(sdk.chat.completions.create(model=BASE, messages=MESSAGES, stream=True))
    usage = totals(flushed_usage(app, client, tenant_key))

    assert upstream.calls("/v1/chat/completions")[0].body["stream_options"] == {"include_usage": True}  # type: ignore[index]
    assert len(chunks) == len(upstream.words) + 1  # the words and the finish: no usage-only chunk
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert all("usage" not in chunk.model_dump(exclude_unset=True) for chunk in chunks)
    assert usage["output_tokens"] == len(upstream.words) == upstream.reported_usage[0]["completion_tokens"]


def test_a_stream_that_asked_for_usage_gets_the_providers_usage_chunk(
    client: TestClient, tenant_key: str, upstream: FakeUpstream
) -> None:
    sdk = sdk_for(client, tenant_key)

    chunks = list(
        sdk.chat.completions.create(
            model=BASE,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == upstream.reported_usage[0]["completion_tokens"]


def test_the_relayed_stream_bytes_are_the_providers_without_the_usage_it_was_asked_for(
    client: TestClient, tenant_key: str, upstream: FakeUpstream
) -> None:
    body = {"model": BASE, "messages": MESSAGES, "stream": True}

    relayed = client.post("/v1/chat/completions", json=body, headers=bearer(tenant_key)).text
    events = [line.removeprefix("data: ") for line in relayed.split("\n\n") if line]

    assert events[-1] == "[DONE]"
    assert [json.loads(event)["choices"][0]["delta"].get("content") for event in events[:-1]] == [
        *upstream.words,
        None,
    ]
    assert "usage" not in relayed


def test_a_refused_request_is_counted_as_an_error_without_tokens(
    app: FastAPI, client: TestClient, tenant_key: str, upstream: FakeUpstream
) -> None:
    upstream.fail_with = openai_error(500, "The server had an error.", "server_error", None)
    sdk = sdk_for(client, tenant_key)

    try:
        sdk.chat.completions.create(model=BASE, messages=MESSAGES)
    except openai.InternalServerError:
        pass
    body = flushed_usage(app, client, tenant_key)

    assert totals(body) == {"requests": 1, "errors": 1, "input_tokens": 0, "output_tokens": 0}
    assert body["data"][0]["model"] == BASE
    assert body["data"][0]["provider"] == "local"


def test_a_fine_tuned_model_is_priced_at_its_fine_tuned_rate_and_an_unpriced_model_has_no_cost(
    app: FastAPI, client: TestClient, runtime: Runtime, tenant_key: str, upstream: FakeUpstream
) -> None:
    add_fine_tuned_model(runtime)
    sdk = sdk_for(client, tenant_key)
    sdk.chat.completions.create(model=FT_MODEL, messages=MESSAGES)
    sdk.chat.completions.create(model=BASE, messages=MESSAGES)
    fine_tuned_usage, base_usage = upstream.reported_usage

    buckets = {bucket["model"]: bucket for bucket in flushed_usage(app, client, tenant_key)["data"]}

    expected = (fine_tuned_usage["prompt_tokens"] * 0.30 + fine_tuned_usage["completion_tokens"] * 1.20) / 1e6
    assert buckets[FT_MODEL]["cost_usd"] == round(expected, 9)
    assert buckets[BASE]["cost_usd"] is None


def test_proxy_metrics_count_requests_and_tokens_by_tenant_and_model(
    client: TestClient, tenant_key: str, upstream: FakeUpstream
) -> None:
    sdk_for(client, tenant_key).chat.completions.create(model=BASE, messages=MESSAGES)
    tenant_id = client.get("/v1/me", headers=bearer(tenant_key)).json()["tenant_id"]

    metrics = client.get("/metrics").text

    labels = f'model="{BASE}",tenant="{tenant_id}"'
    assert f"ftm_proxy_requests_total{{{labels}}} 1.0" in metrics
    output = upstream.reported_usage[0]["completion_tokens"]
    assert f'ftm_proxy_tokens_total{{kind="output",{labels}}} {float(output)}' in metrics
    assert f"ftm_proxy_request_duration_seconds_count{{{labels}}} 1.0" in metrics
