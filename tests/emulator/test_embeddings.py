"""Embeddings: deterministic unit vectors in OpenAI's shape, so `client.embeddings.create` works."""

from __future__ import annotations

import math

import openai
import pytest
from fastapi.testclient import TestClient

from emulator.tokens import Tokenizers
from tests.emulator.conftest import make_client

MODEL = "text-embedding-3-small"


@pytest.fixture
def sdk(http: TestClient) -> openai.OpenAI:
    """Not in strict validation: the SDK validates before it decodes base64, even against OpenAI."""
    return make_client(http, strict=False)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_the_sdk_gets_one_unit_vector_per_input_with_usage(sdk: openai.OpenAI) -> None:
    # Given two texts
    texts = ["When was Jonny Whizbang born?", "The capital of France is Paris."]

    # When the SDK embeds them (it asks for base64 and decodes it)
    result = sdk.embeddings.create(model=MODEL, input=texts)

    # Then each has a normalised vector of the model's size, and tokens are counted
    assert [item.index for item in result.data] == [0, 1]
    assert all(len(item.embedding) == 1536 for item in result.data)
    assert all(math.isclose(_cosine(i.embedding, i.embedding), 1.0, rel_tol=1e-5) for i in result.data)
    assert result.model == MODEL
    tokens = sum(Tokenizers().count("cl100k_base", text) for text in texts)
    assert result.usage.prompt_tokens == result.usage.total_tokens == tokens


def test_the_same_text_always_gets_the_same_vector_and_shared_words_pull_vectors_together(
    sdk: openai.OpenAI,
) -> None:
    # Given a text, a paraphrase sharing its words and an unrelated text
    texts = ["when was jonny whizbang born", "Jonny Whizbang: when was he born?", "Paris, France"]

    # When they are embedded twice
    first = [item.embedding for item in sdk.embeddings.create(model=MODEL, input=texts).data]
    again = sdk.embeddings.create(model=MODEL, input=texts[0], encoding_format="float").data[0]

    # Then the vectors repeat, and the paraphrase is closer than the unrelated text
    assert again.embedding == pytest.approx(first[0], abs=1e-6)
    assert _cosine(first[0], first[1]) > 0.8
    assert abs(_cosine(first[0], first[2])) < 0.3


def test_shorter_dimensions_are_the_first_coordinates_renormalised(sdk: openai.OpenAI) -> None:
    full = sdk.embeddings.create(model=MODEL, input="a b c d e f g h", encoding_format="float").data[0]
    short = sdk.embeddings.create(model=MODEL, input="a b c d e f g h", dimensions=256).data[0]

    assert len(short.embedding) == 256
    assert math.isclose(_cosine(short.embedding, short.embedding), 1.0, rel_tol=1e-5)
    norm = math.sqrt(sum(v * v for v in full.embedding[:256]))
    assert short.embedding == pytest.approx([v / norm for v in full.embedding[:256]], abs=1e-6)


def test_token_ids_embed_as_the_text_they_encode(sdk: openai.OpenAI) -> None:
    # 15339 1917 is "hello world" in cl100k_base
    by_tokens = sdk.embeddings.create(model=MODEL, input=[[15339, 1917]], encoding_format="float")
    by_text = sdk.embeddings.create(model=MODEL, input="hello world", encoding_format="float")

    assert by_tokens.data[0].embedding == pytest.approx(by_text.data[0].embedding)
    assert by_tokens.usage.prompt_tokens == 2


def test_a_chat_model_is_not_an_embedding_model(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        sdk.embeddings.create(model="gpt-4o-mini-2024-07-18", input="hi")

    assert raised.value.body["param"] == "model"  # type: ignore[index]
    assert raised.value.body["code"] == "model_not_found"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL, "input": ""}, "input"),
        ({"model": "text-embedding-ada-002", "input": "hi", "dimensions": 8}, "dimensions"),
        ({"model": MODEL, "input": "hi", "dimensions": 4096}, "dimensions"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    admin: TestClient, body: dict[str, object], param: str
) -> None:
    response = admin.post("/v1/embeddings", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_embedding_models_are_listed(sdk: openai.OpenAI) -> None:
    ids = {model.id for model in sdk.models.list()}

    assert {"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"} <= ids
    assert sdk.models.retrieve(MODEL).id == MODEL
