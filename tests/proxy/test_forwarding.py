"""The proxy routes a tenant's requests to the right provider, with the provider's credentials."""

from __future__ import annotations

import json

import openai
import pytest
from fastapi.testclient import TestClient

from service.runtime import Runtime
from tests.conftest import make_key
from tests.conftest import sdk_for as sdk
from tests.proxy.fakes import ANSWER, FT_MODEL, UPSTREAM_KEY, FakeUpstream, add_fine_tuned_model

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "When was Jonny Whizbang born?"}
]


def test_own_fine_tuned_model_is_forwarded_with_the_providers_key_not_the_callers(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI, tenant_key: str
) -> None:
    # Given a fine-tuned model of the caller's tenant
    add_fine_tuned_model(runtime)

    # When the caller asks it through the proxy
    completion = caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES)

    # Then the provider answered it, called with its own key and the provider's model name
    assert completion.choices[0].message.content == ANSWER
    [call] = upstream.calls("/v1/chat/completions")
    assert call.authorization == f"Bearer {UPSTREAM_KEY}"
    assert call.body is not None
    assert call.body["model"] == FT_MODEL
    assert all(tenant_key not in value for value in call.headers.values())


def test_the_body_reaches_the_provider_unchanged(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model and a request with fields the proxy knows nothing about
    add_fine_tuned_model(runtime)
    extra = {"temperature": 0.2, "metadata": {"ticket": "T-1"}, "some_future_option": [1, {"a": None}]}

    # When it is sent
    caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES, extra_body=extra)

    # Then the provider got exactly what the caller sent
    [call] = upstream.calls("/v1/chat/completions")
    assert call.body == {"model": FT_MODEL, "messages": MESSAGES, **extra}


def test_the_response_names_the_provider_and_keeps_the_providers_body(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model
    add_fine_tuned_model(runtime)

    # When the caller asks it and looks at the raw response
    raw = caller.chat.completions.with_raw_response.create(model=FT_MODEL, messages=MESSAGES)

    # Then the status and body are the provider's, and a header says which provider served it
    assert raw.status_code == 200
    assert raw.headers["x-ftm-provider"] == "local"
    assert raw.headers["x-ftm-upstream-request-id"] == "req_up"
    assert json.loads(raw.content)["id"] == "chatcmpl-fake"


def test_a_base_model_is_forwarded_to_the_default_provider(
    upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given no fine-tuned model at all
    # When the caller asks a base model for a (legacy) completion
    completion = caller.completions.create(model="babbage-002", prompt="Jonny Whizbang was born on")

    # Then the default provider answered it
    assert completion.choices[0].text == ANSWER
    [call] = upstream.calls("/v1/completions")
    assert call.body is not None
    assert call.body["model"] == "babbage-002"


def test_a_streamed_chat_completion_has_the_same_text_as_a_non_streamed_one(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model and its non-streamed answer
    add_fine_tuned_model(runtime)
    whole = caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES).choices[0].message.content

    # When the same question is streamed
    chunks = list(caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES, stream=True))

    # Then the deltas add up to the same text, and the stream ended properly
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == whole
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_streamed_completion_has_the_same_text_as_a_non_streamed_one(
    client: TestClient, tenant_key: str, upstream: FakeUpstream
) -> None:
    # Given a base model's non-streamed completion. (Not strict: like OpenAI, the fake sends
    # `finish_reason: null` before the last chunk, which the SDK's Completion type does not admit.)
    caller = sdk(client, tenant_key, strict=False)
    whole = caller.completions.create(model="davinci-002", prompt="Jonny").choices[0].text

    # When the same prompt is streamed
    chunks = list(caller.completions.create(model="davinci-002", prompt="Jonny", stream=True))

    # Then the pieces add up to the same text
    assert "".join(chunk.choices[0].text for chunk in chunks) == whole


def test_a_stream_is_served_as_server_sent_events_naming_the_provider(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model
    add_fine_tuned_model(runtime)

    # When a stream is requested
    with caller.chat.completions.with_streaming_response.create(
        model=FT_MODEL, messages=MESSAGES, stream=True
    ) as response:
        body = response.read()

    # Then it is an event stream, relayed as the provider wrote it
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-ftm-provider"] == "local"
    assert body.endswith(b"data: [DONE]\n\n")


def test_another_tenants_model_is_not_found_and_the_provider_is_never_called(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model that belongs to another tenant
    add_fine_tuned_model(runtime, tenant="globex", model="ft:gpt-4o-mini-2024-07-18:globex::xyz")

    # When the caller asks it
    with pytest.raises(openai.NotFoundError) as raised:
        caller.chat.completions.create(model="ft:gpt-4o-mini-2024-07-18:globex::xyz", messages=MESSAGES)

    # Then it does not exist as far as the caller can tell, and nothing went upstream
    assert raised.value.code == "model_not_found"
    assert upstream.received == []


@pytest.mark.parametrize("stream", [False, True])
def test_an_unknown_model_is_not_found_and_the_provider_is_never_called(
    upstream: FakeUpstream, caller: openai.OpenAI, stream: bool
) -> None:
    # Given no such model anywhere
    # When the caller asks it
    with pytest.raises(openai.NotFoundError) as raised:
        caller.chat.completions.create(model="ft:nope:acme::000", messages=MESSAGES, stream=stream)

    # Then it is a 404 model_not_found naming the model, and nothing went upstream
    assert raised.value.code == "model_not_found"
    assert raised.value.param == "model"
    assert upstream.received == []


def test_a_key_without_the_inference_scope_is_refused(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a key that may only manage files
    caller = caller.with_options(api_key=make_key(runtime, scopes=frozenset({"files"})))

    # When it asks for a completion
    with pytest.raises(openai.PermissionDeniedError):
        caller.chat.completions.create(model="gpt-4o-mini-2024-07-18", messages=MESSAGES)

    # Then nothing went upstream
    assert upstream.received == []
