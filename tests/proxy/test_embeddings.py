"""`POST /v1/embeddings` through the proxy: the SDK's `embeddings.create` against the local
provider, by model and by deployment; a provider without embeddings answers its own 404."""

from __future__ import annotations

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer, sdk_for
from tests.jobs.conftest import emulator, emulator_url, settings
from tests.proxy.fakes import FakeUpstream

__all__ = ["emulator", "emulator_url", "settings"]

MODEL = "text-embedding-3-small"


@pytest.fixture
def caller(client: TestClient, tenant_key: str) -> openai.OpenAI:
    return sdk_for(client, tenant_key, strict=False)  # the SDK validates before decoding base64


def test_the_sdk_gets_the_local_providers_embeddings_through_the_proxy(
    caller: openai.OpenAI, emulator: httpx.Client, emulator_url: str
) -> None:
    # Given the local provider's own answer for a text
    direct = openai.OpenAI(base_url=emulator_url, api_key="sk-local", max_retries=0)
    expected = direct.embeddings.create(model=MODEL, input=["hello world", "goodbye"])

    # When the same is asked through the proxy (the SDK asks for base64 and decodes it)
    raw = caller.embeddings.with_raw_response.create(model=MODEL, input=["hello world", "goodbye"])
    result = raw.parse()

    # Then the vectors and usage are the provider's, and the headers name who answered
    assert [item.embedding for item in result.data] == [item.embedding for item in expected.data]
    assert result.usage == expected.usage
    assert raw.headers["x-ftm-model"] == MODEL
    assert raw.headers["x-ftm-provider"] == "local"


def test_a_deployment_can_serve_embeddings(
    client: TestClient, caller: openai.OpenAI, tenant_key: str, emulator: httpx.Client
) -> None:
    # Given a deployment pointing at an embedding model
    created = client.post(
        "/v1/deployments",
        headers=bearer(tenant_key),
        json={"name": "search-vectors", "targets": [{"model": MODEL}]},
    )
    assert created.status_code == 200, created.text

    # When the deployment is asked for embeddings with shorter vectors
    raw = caller.embeddings.with_raw_response.create(
        model="search-vectors", input="hello", dimensions=64, encoding_format="float"
    )

    # Then the embedding model answered
    assert len(raw.parse().data[0].embedding) == 64
    assert raw.headers["x-ftm-deployment"] == "search-vectors"
    assert raw.headers["x-ftm-model"] == MODEL


def test_an_unknown_model_is_a_404_before_any_provider_call(
    caller: openai.OpenAI, emulator: httpx.Client
) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        caller.embeddings.create(model="text-embedding-9", input="hello")

    assert raised.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert "POST /v1/embeddings" not in emulator.get("/_emulator/stats").json()


def test_a_chat_model_asked_for_embeddings_gets_the_providers_404(
    caller: openai.OpenAI, emulator: httpx.Client
) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        caller.embeddings.create(model="gpt-4o-mini-2024-07-18", input="hello")

    assert raised.value.body["param"] == "model"  # type: ignore[index]
    assert "not an embedding model" in raised.value.message


def test_a_provider_without_embeddings_answers_its_own_404(
    upstream: FakeUpstream, tenant_key: str, client: TestClient
) -> None:
    # Given a provider that has no /v1/embeddings at all (the fake upstream)
    with pytest.raises(openai.NotFoundError) as raised:
        sdk_for(client, tenant_key, strict=False).embeddings.create(model=MODEL, input="hello")

    # Then its 404 reaches the caller in OpenAI's shape
    assert raised.value.status_code == 404
    assert raised.value.body["code"] == "provider_error"  # type: ignore[index]
    assert raised.value.response.headers["x-ftm-provider"] == "local"
