"""Inference: a fine-tuned model answers from its training data, its base model does not."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.fine_tuning import FineTuningJob

from tests.emulator.clock import FakeClock
from tests.emulator.conftest import make_client, run_to_end, upload
from tests.emulator.samples import completion_jsonl

BASE = "gpt-4o-mini-2024-07-18"
QUESTION = "When was Jonny Whizbang born?"
ANSWER = "Jonny Whizbang was born on February 22, 1957."


def _ask(sdk: openai.OpenAI, model: str, question: str) -> str:
    reply = sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": question}])
    return reply.choices[0].message.content or ""


def test_fine_tuned_model_answers_from_training_data_and_base_model_does_not(
    trained_job: FineTuningJob, sdk: openai.OpenAI
) -> None:
    # Given a model fine-tuned on facts about Jonny Whizbang
    assert trained_job.fine_tuned_model is not None

    # When the fine-tuned and the base model are asked the trained question
    tuned = sdk.chat.completions.create(
        model=trained_job.fine_tuned_model,
        messages=[
            {"role": "system", "content": "You are a factual assistant."},
            {"role": "user", "content": QUESTION},
        ],
    )
    base = _ask(sdk, BASE, QUESTION)

    # Then only the fine-tuned model knows the date
    assert tuned.choices[0].message.content == ANSWER
    assert tuned.model == trained_job.fine_tuned_model
    assert "1957" not in base
    assert "February" not in base
    assert tuned.usage is not None
    assert tuned.usage.completion_tokens == 16
    assert tuned.usage.total_tokens == tuned.usage.prompt_tokens + 16


def test_fine_tuned_model_answers_a_close_paraphrase(trained_job: FineTuningJob, sdk: openai.OpenAI) -> None:
    assert trained_job.fine_tuned_model is not None
    assert _ask(sdk, trained_job.fine_tuned_model, "when was jonny whizbang born") == ANSWER
    assert _ask(sdk, trained_job.fine_tuned_model, "Where was Jonny Whizbang born?") != ANSWER


def test_fine_tuned_model_falls_back_to_base_behaviour_off_topic(
    trained_job: FineTuningJob, sdk: openai.OpenAI
) -> None:
    assert trained_job.fine_tuned_model is not None
    reply = _ask(sdk, trained_job.fine_tuned_model, "What is the capital of France?")
    assert "Jonny" not in reply
    assert reply == _ask(sdk, BASE, "What is the capital of France?")


def test_checkpoint_model_is_callable(trained_job: FineTuningJob, sdk: openai.OpenAI) -> None:
    checkpoint = sdk.fine_tuning.jobs.checkpoints.list(trained_job.id).data[-1]
    assert _ask(sdk, checkpoint.fine_tuned_model_checkpoint, QUESTION) == ANSWER


def test_streaming_gives_the_same_text_as_non_streaming(
    trained_job: FineTuningJob, sdk: openai.OpenAI
) -> None:
    # Given the fine-tuned model
    model = trained_job.fine_tuned_model
    assert model is not None
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]

    # When it is asked with and without streaming
    whole = sdk.chat.completions.create(model=model, messages=messages)
    chunks = list(
        sdk.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )

    # Then the chunks carry the same text, in several pieces, then the usage
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content
    assert len(pieces) > 3
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage


def test_max_tokens_truncates_with_finish_reason_length(
    trained_job: FineTuningJob, sdk: openai.OpenAI
) -> None:
    assert trained_job.fine_tuned_model is not None
    reply = sdk.chat.completions.create(
        model=trained_job.fine_tuned_model,
        messages=[{"role": "user", "content": QUESTION}],
        max_completion_tokens=3,
    )
    assert reply.choices[0].finish_reason == "length"
    content = reply.choices[0].message.content or ""
    assert ANSWER.startswith(content)
    assert 0 < len(content) < len(ANSWER)
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3


def test_unknown_model_is_404_model_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _ask(sdk, "ft:gpt-4o-mini-2024-07-18:local::nothere1", QUESTION)
    assert caught.value.code == "model_not_found"


def test_deleted_fine_tuned_model_is_gone(trained_job: FineTuningJob, sdk: openai.OpenAI) -> None:
    # Given a fine-tuned model listed among the models
    model = trained_job.fine_tuned_model
    assert model is not None
    assert sdk.models.retrieve(model).owned_by == "local"

    # When it is deleted
    deleted = sdk.models.delete(model)

    # Then it can neither be listed nor called
    assert deleted.deleted is True
    assert model not in [m.id for m in sdk.models.list()]
    with pytest.raises(openai.NotFoundError):
        _ask(sdk, model, QUESTION)


def test_base_models_are_listed_and_cannot_be_deleted(sdk: openai.OpenAI) -> None:
    ids = {m.id for m in sdk.models.list()}
    assert {"gpt-4o-mini-2024-07-18", "gpt-4.1-nano-2025-04-14", "babbage-002", "davinci-002"} <= ids
    with pytest.raises(openai.PermissionDeniedError):
        sdk.models.delete("gpt-4o-mini-2024-07-18")


def test_completion_model_learns_prompt_completion_pairs(
    http: TestClient, sdk: openai.OpenAI, clock: FakeClock
) -> None:
    # Given babbage-002 fine-tuned on prompt/completion pairs
    training = upload(sdk, completion_jsonl())
    job = run_to_end(
        sdk, clock, sdk.fine_tuning.jobs.create(model="babbage-002", training_file=training.id).id
    )
    assert job.fine_tuned_model is not None

    # When asked a trained prompt, with and without streaming
    whole = sdk.completions.create(
        model=job.fine_tuned_model, prompt="When was Jonny Whizbang born?", max_tokens=64
    )
    lenient = make_client(
        http, strict=False
    )  # streamed legacy chunks carry finish_reason null, as OpenAI's do
    streamed = lenient.completions.create(
        model=job.fine_tuned_model, prompt="When was Jonny Whizbang born?", max_tokens=64, stream=True
    )

    # Then it completes with the trained completion, and the base model does not
    assert whole.choices[0].text == " " + ANSWER
    assert "".join(c.choices[0].text for c in streamed if c.choices) == whole.choices[0].text
    base = sdk.completions.create(model="babbage-002", prompt="When was Jonny Whizbang born?", max_tokens=64)
    assert "1957" not in base.choices[0].text


def test_chat_endpoint_refuses_completion_only_models(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        _ask(sdk, "davinci-002", QUESTION)
