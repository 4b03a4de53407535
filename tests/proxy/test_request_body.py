"""Bad request bodies are refused with OpenAI's error shape, and never reach the provider."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.proxy.payload import parse_payload
from tests.conftest import bearer
from tests.proxy.fakes import FakeUpstream


@pytest.mark.parametrize(
    ("content", "param", "code"),
    [
        (b"model=gpt-4o-mini-2024-07-18", None, "invalid_json"),
        (b"[" * 100_000, None, "invalid_json"),
        (b'["gpt-4o-mini-2024-07-18"]', None, "invalid_type"),
        (b'{"messages": []}', "model", "missing_required_parameter"),
        (b'{"model": 42, "messages": []}', "model", "invalid_type"),
        (b'{"model": "", "messages": []}', "model", "invalid_type"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_a_body_that_is_not_an_object_with_a_model_is_a_400_naming_the_problem(
    client: TestClient,
    tenant_key: str,
    upstream: FakeUpstream,
    path: str,
    content: bytes,
    param: str | None,
    code: str,
) -> None:
    # Given a malformed body
    # When it is posted
    response = client.post(path, content=content, headers=bearer(tenant_key))

    # Then it is refused in OpenAI's shape, naming the parameter when there is one
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert upstream.received == []


def test_a_body_over_the_limit_is_a_413(
    client: TestClient, tenant_key: str, upstream: FakeUpstream, settings: Settings
) -> None:
    # Given a body just over the configured limit
    padding = "x" * settings.max_json_body_bytes
    content = json.dumps({"model": "gpt-4o-mini-2024-07-18", "prompt": padding}).encode()

    # When it is posted
    response = client.post("/v1/completions", content=content, headers=bearer(tenant_key))

    # Then it is refused before anything goes upstream
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert upstream.received == []


def test_a_body_over_the_limit_without_a_content_length_is_a_413(
    client: TestClient, tenant_key: str, upstream: FakeUpstream, settings: Settings
) -> None:
    # Given a body over the limit, sent in chunks without announcing its length
    chunk = b" " * 65_536
    chunks = [
        b'{"model": "gpt-4o-mini-2024-07-18"',
        *[chunk] * (settings.max_json_body_bytes // len(chunk) + 1),
    ]

    # When it is posted
    response = client.post("/v1/completions", content=iter([*chunks, b"}"]), headers=bearer(tenant_key))

    # Then it is refused too
    assert response.status_code == 413
    assert upstream.received == []


def test_the_body_goes_upstream_as_written_when_the_model_name_is_unchanged() -> None:
    # Given a body with odd but valid formatting
    raw = b'{ "model" : "m",  "prompt": "caf\\u00e9" }'

    # When it is prepared for a provider that knows the model by the same name
    forwarded = parse_payload(raw).for_upstream("m")

    # Then not a byte changed
    assert forwarded == raw


def test_only_the_model_changes_when_the_provider_knows_it_by_another_name() -> None:
    # Given a body with other fields
    payload = parse_payload(b'{"model": "alias", "prompt": "caf\\u00e9", "stream": true, "n": 2}')

    # When it is prepared for a provider that calls the model differently
    forwarded = json.loads(payload.for_upstream("ft:gpt-4o-mini-2024-07-18:acme::abc"))

    # Then only `model` differs
    assert forwarded == {
        "model": "ft:gpt-4o-mini-2024-07-18:acme::abc",
        "prompt": "café",
        "stream": True,
        "n": 2,
    }
    assert payload.stream is True


def test_a_renamed_model_is_spliced_into_the_callers_bytes_and_nothing_else_changes() -> None:
    # Given a body with odd formatting and text that quotes a "model" key
    raw = b'{ "model" :  "support-bot", "messages": [{"content": "{\\"model\\": \\"support-bot\\"}"}] }'

    # When it is prepared for the deployment's target
    forwarded = parse_payload(raw).for_upstream("ft:gpt-4o-mini-2024-07-18:acme::abc")

    # Then only the model's value differs, byte for byte
    assert forwarded == raw.replace(b'"support-bot",', b'"ft:gpt-4o-mini-2024-07-18:acme::abc",')


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "bot", "metadata": {"model": "bot"}}',  # two model keys: which one is whose
        b'{"mod\\u0065l": "bot", "metadata": {"model": "bot"}}',  # the top-level key escaped
        b'{"model": "b\\u006ft"}',  # the value escaped
    ],
)
def test_a_body_whose_model_key_is_ambiguous_is_rewritten_whole(raw: bytes) -> None:
    # When a body whose model key cannot be found plainly is prepared for the target
    forwarded = json.loads(parse_payload(raw).for_upstream("ft:x"))

    # Then the top-level model is the target and nested fields are kept
    assert forwarded["model"] == "ft:x"
    assert forwarded.get("metadata", {}).get("model", "bot") == "bot"


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
@pytest.mark.parametrize(
    ("content", "param"),
    [
        ('{"model": "gpt-4o-mini-2024-07-18", "temperature": NaN}', "temperature"),
        (
            '{"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "x": Infinity}]}',
            "messages[0].x",
        ),
        ('{"model": "gpt-4o-mini-2024-07-18", "logit_bias": {"50256": -1e999}}', "logit_bias.50256"),
    ],
)
def test_a_non_finite_number_in_an_inference_request_is_a_400_and_is_not_forwarded(
    client: TestClient, tenant_key: str, upstream: FakeUpstream, path: str, content: str, param: str
) -> None:
    # Given an inference request holding a non-finite number
    # When it is posted to the proxy
    response = client.post(path, content=content, headers={**bearer(tenant_key), **JSON})

    # Then it is refused naming the field, and the provider never sees it
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert upstream.received == []


def test_finite_numbers_in_an_inference_request_are_forwarded_as_written(
    client: TestClient, tenant_key: str, upstream: FakeUpstream
) -> None:
    # Given an inference request with ordinary numbers, large and small
    content = '{"model": "gpt-4o-mini-2024-07-18", "temperature": 0.5, "top_p": 1e-300, "n": 1}'

    # When it is posted
    response = client.post("/v1/chat/completions", content=content, headers={**bearer(tenant_key), **JSON})

    # Then the provider receives them
    assert response.status_code == 200
    assert upstream.received[0].body == {
        "model": "gpt-4o-mini-2024-07-18",
        "temperature": 0.5,
        "top_p": 1e-300,
        "n": 1,
    }


def test_a_model_name_holding_a_nul_character_is_a_400_naming_model(
    client: TestClient, tenant_key: str, upstream: FakeUpstream
) -> None:
    # Given a model name with NUL in it
    content = '{"model": "gpt-4o-mini\\u0000", "messages": []}'

    # When it is posted to the proxy
    response = client.post("/v1/chat/completions", content=content, headers={**bearer(tenant_key), **JSON})

    # Then it is refused naming model, and nothing goes upstream
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"
    assert upstream.received == []
