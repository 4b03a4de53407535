"""The whole product through the official SDK against the running stack: upload, fine-tune,
signed webhook, then the fine-tuned model answers what its base model does not know."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import openai
import pytest
from openai.types import FileObject
from openai.types.webhooks import FineTuningJobSucceededWebhookEvent

from tests.e2e.conftest import Receiver, Stack
from tests.factories import jonny_dataset

pytestmark = pytest.mark.e2e

QUESTION = "When was Jonny Whizbang born?"
BASE_MODEL = "gpt-4o-mini-2024-07-18"
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout_s: float = 120) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def sdk(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.base_url, api_key=key, max_retries=0, _strict_response_validation=True
    )


def ask(client: openai.OpenAI, model: str) -> str:
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}])
    return reply.choices[0].message.content or ""


def test_fine_tune_with_the_sdk_receive_the_webhook_and_ask_the_model(
    stack: Stack, receiver: Receiver
) -> None:
    client = sdk(stack, stack.admin_key)
    endpoint = client.webhooks.create(
        name="ci receiver",
        url=receiver.url,
        event_types=["fine_tuning.job.succeeded", "fine_tuning.job.failed"],
    )

    uploaded = client.files.create(
        file=("jonny.jsonl", io.BytesIO(jonny_dataset())),
        purpose="fine-tune",
        extra_headers={"X-Request-ID": "req-e2e-upload"},
    )
    wait_for(
        lambda: client.files.retrieve(uploaded.id).status == "processed" or None, "the file to be processed"
    )
    job = client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=uploaded.id, suffix="jonny")
    finished = wait_for(
        lambda: (
            (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed", "cancelled")
            and j
            or None
        ),
        "the job to finish",
    )
    delivery = receiver.requests.get(timeout=60)
    event = client.webhooks.unwrap(delivery.body, delivery.headers, secret=endpoint.signing_secret)

    assert finished.status == "succeeded", finished.error
    assert finished.fine_tuned_model
    assert finished.fine_tuned_model.startswith(f"ft:{BASE_MODEL}:")
    assert isinstance(event, FineTuningJobSucceededWebhookEvent)
    assert event.data.id == job.id
    assert finished.fine_tuned_model in [m.id for m in client.models.list()]

    tuned_answer = ask(client, finished.fine_tuned_model)
    base_answer = ask(client, BASE_MODEL)
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model=finished.fine_tuned_model, messages=[{"role": "user", "content": QUESTION}], stream=True
        )
        if chunk.choices
    )
    assert "February 22, 1957" in tuned_answer
    assert "1957" not in base_answer
    assert streamed == tuned_answer

    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    results = client.files.content(finished.result_files[0]).text
    assert any(e.type == "metrics" for e in events)
    assert checkpoints
    assert all(c.fine_tuning_job_id == job.id for c in checkpoints)
    assert results.splitlines()[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"

    # A second tenant sees none of it.
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    httpx.post(f"{stack.base_url}/tenants", json={"name": "second-team"}, headers=admin).raise_for_status()
    created = httpx.post(f"{stack.base_url}/api_keys", json={"tenant": "second-team"}, headers=admin)
    other = sdk(stack, created.json()["key"])
    for call in (
        lambda: other.files.retrieve(uploaded.id),
        lambda: other.fine_tuning.jobs.retrieve(job.id),
        lambda: other.models.retrieve(finished.fine_tuned_model or ""),
        lambda: other.webhooks.retrieve(endpoint.id),
        lambda: ask(other, finished.fine_tuned_model or ""),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert finished.fine_tuned_model not in [m.id for m in other.models.list()]

    # The worker's log lines carry the request id that caused the work; no secret is ever logged.
    lines = [json.loads(line) for line in stack.log.read_text().splitlines() if line.startswith("{")]
    text = stack.log.read_text()

    validated = [
        line
        for line in lines
        if str(line.get("message", "")).startswith("file ") and "validated" in line["message"]
    ]
    assert validated
    assert validated[0]["request_id"] == "req-e2e-upload"
    assert stack.admin_key not in text
    assert "whsec_" not in text
    assert created.json()["key"] not in text
    assert re.findall(r"ftm_[A-Za-z0-9_-]{20,}", text) == []  # keys show as their 12-character prefix only


def test_a_large_csv_is_prepared_by_the_worker_into_files_that_validate(stack: Stack) -> None:
    client = sdk(stack, stack.admin_key)
    rows = 100_000  # about 10 MB: over FTM_PREPARATION_INLINE_BYTES (8 MiB), so a worker prepares it
    body = "question,answer\n" + "".join(
        f"When was resident number {n} of Tumbleweed Falls born?,Resident {n} was born in {1900 + n % 100}.\n"
        for n in range(rows)
    )
    source = client.files.create(file=("town.csv", io.BytesIO(body.encode())), purpose="user_data")
    headers = {"Authorization": f"Bearer {stack.admin_key}"}

    queued = httpx.post(
        f"{stack.base_url}/files/{source.id}/preparations",
        headers=headers,
        json={"user_column": "question", "assistant_column": "answer", "validation_split": 0.1, "seed": 5},
        timeout=30,
    ).json()

    def prepared() -> dict[str, Any] | None:
        found: dict[str, Any] = httpx.get(
            f"{stack.base_url}/preparations/{queued['id']}", headers=headers, timeout=30
        ).json()
        return found if found["status"] != "queued" else None

    done = wait_for(prepared, "the preparation")

    def validated() -> FileObject | None:
        file = client.files.retrieve(done["training_file"])
        return file if file.status != "uploaded" else None

    training = wait_for(validated, "the training file's validation")
    assert queued["status"] == "queued"
    assert done["status"] == "succeeded", done
    assert (done["summary"]["training_examples"], done["summary"]["validation_examples"]) == (90_000, 10_000)
    assert training.status == "processed", training.status_details
