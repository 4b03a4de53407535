"""Provider failures reach SDK callers as the exceptions the SDK would raise talking to OpenAI."""

from __future__ import annotations

import openai
import pytest

from service.runtime import Runtime
from tests.proxy.fakes import (
    FT_MODEL,
    WORDS,
    Failure,
    FakeUpstream,
    add_fine_tuned_model,
    attach,
    nothing_listening_url,
    openai_error,
    point_provider_at,
)

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("stream", [False, True])
def test_a_provider_429_is_a_rate_limit_error_with_the_providers_retry_after(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI, stream: bool
) -> None:
    # Given a provider that is rate limiting
    add_fine_tuned_model(runtime)
    upstream.fail_with = openai_error(
        429, "Rate limit reached for requests.", "requests", "rate_limit_exceeded", **{"Retry-After": "7"}
    )

    # When the caller asks
    with pytest.raises(openai.RateLimitError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES, stream=stream)

    # Then it gets the provider's error and is told when to retry
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.body == {
        "message": "Rate limit reached for requests.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


def test_a_provider_500_is_an_internal_server_error(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a provider failing
    add_fine_tuned_model(runtime)
    upstream.fail_with = openai_error(500, "The server had an error.", "server_error", None)

    # When the caller asks
    with pytest.raises(openai.InternalServerError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES)

    # Then the status and the provider's message are kept
    assert raised.value.status_code == 500
    assert raised.value.body == {
        "message": "The server had an error.",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_a_provider_404_is_a_not_found_error_with_the_providers_code(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a model the provider no longer has
    add_fine_tuned_model(runtime)
    upstream.fail_with = openai_error(
        404, "The model does not exist.", "invalid_request_error", "model_not_found"
    )

    # When the caller asks it
    with pytest.raises(openai.NotFoundError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES)

    # Then it is the provider's 404
    assert raised.value.code == "model_not_found"
    assert "The model does not exist." in raised.value.message


def test_a_provider_error_that_is_not_json_keeps_its_status_in_openais_shape(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a gateway in front of the provider answering with an HTML page
    add_fine_tuned_model(runtime)
    upstream.fail_with = Failure(503, b"<html>Service Unavailable</html>")

    # When the caller asks
    with pytest.raises(openai.InternalServerError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES)

    # Then the status is kept and the body is an OpenAI error
    assert raised.value.status_code == 503
    assert raised.value.code == "provider_error"


def test_a_provider_refusing_our_credentials_is_a_bad_gateway_not_the_callers_problem(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a provider that rejects the service's key (and quotes part of it back)
    add_fine_tuned_model(runtime)
    upstream.fail_with = openai_error(
        401, "Incorrect API key provided: sk-upst***", "invalid_request_error", None
    )

    # When the caller asks
    with pytest.raises(openai.InternalServerError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES)

    # Then it is a 502, not an authentication error, and the provider's message is not relayed
    assert raised.value.status_code == 502
    assert raised.value.code == "provider_unavailable"
    assert "sk-upst" not in raised.value.response.text


def test_an_unreachable_provider_is_a_bad_gateway_in_openais_shape(
    runtime: Runtime, caller: openai.OpenAI
) -> None:
    # Given a provider where nothing listens
    add_fine_tuned_model(runtime)
    point_provider_at(runtime, "local", nothing_listening_url())

    # When the caller asks
    with pytest.raises(openai.InternalServerError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES)

    # Then it gets a gateway error it can retry, saying which provider is down
    assert raised.value.status_code == 502
    assert raised.value.code == "provider_unavailable"
    assert raised.value.type == "api_error"
    assert raised.value.response.headers["x-ftm-provider"] == "local"


@pytest.mark.parametrize("stream", [False, True])
def test_a_provider_slower_than_the_timeout_is_a_gateway_timeout(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI, stream: bool
) -> None:
    # Given a proxy timeout shorter than the provider takes to answer
    add_fine_tuned_model(runtime)
    runtime.settings.proxy_timeout_s = 0.2
    attach(runtime, upstream).close()  # the relay client is made again with the new timeout
    upstream.answer_delay_s = 2.0

    # When the caller asks
    with pytest.raises(openai.InternalServerError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES, stream=stream)

    # Then it is a 504 naming the provider
    assert raised.value.status_code == 504
    assert raised.value.code == "provider_unavailable"
    assert raised.value.response.headers["x-ftm-provider"] == "local"


def test_a_stream_that_breaks_off_ends_with_an_error_the_sdk_raises(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a provider whose stream's connection drops after the first chunk
    add_fine_tuned_model(runtime)
    upstream.break_after = 1

    # When the caller streams
    chunks = iter(caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES, stream=True))
    first = next(chunks)
    with pytest.raises(openai.APIError) as raised:
        next(chunks)

    # Then it got what was sent, then an error rather than a silently truncated answer
    assert first.choices[0].delta.content == WORDS[0]
    assert raised.value.code == "provider_unavailable"


def test_a_stream_that_breaks_off_before_its_first_byte_is_a_gateway_error(
    runtime: Runtime, upstream: FakeUpstream, caller: openai.OpenAI
) -> None:
    # Given a provider that starts a stream and drops it before sending anything
    add_fine_tuned_model(runtime)
    upstream.break_after = 0

    # When the caller streams
    with pytest.raises(openai.InternalServerError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES, stream=True)

    # Then nothing was sent yet, so it is an error status (as for an unreachable provider), not a 200
    assert raised.value.status_code == 502
    assert raised.value.code == "provider_unavailable"
    assert raised.value.response.headers["x-ftm-model"] == FT_MODEL
