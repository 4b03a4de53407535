"""Evaluate on success and gated promotion through the running stack (API, Celery workers, beat,
the local provider): a job with a validation file succeeds, its evaluation is started, run and
concluded by the workers, its webhook arrives signed, and a gated deployment then answers by its
name with the new model."""

from __future__ import annotations

import io
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import Receiver, Stack
from tests.e2e.test_fine_tuning_flow import BASE_MODEL, QUESTION, sdk, wait_for
from tests.factories import JONNY_HELD_OUT, chat_example, jonny_dataset, make_jsonl

pytestmark = pytest.mark.e2e


def _processed(client: openai.OpenAI, name: str, body: bytes) -> str:
    uploaded = client.files.create(file=(name, io.BytesIO(body)), purpose="fine-tune")
    wait_for(
        lambda: client.files.retrieve(uploaded.id).status == "processed" or None, f"{name} to be processed"
    )
    return uploaded.id


def test_a_succeeded_job_is_evaluated_by_the_workers_and_promoted_past_its_gate(
    stack: Stack, receiver: Receiver
) -> None:
    client = sdk(stack, stack.admin_key)
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    native: Any = ["fine_tuning.job.evaluation.completed"]  # the service's own event: not in the SDK's types
    endpoint = client.webhooks.create(name="evaluations", url=receiver.url, event_types=native)
    deployed = httpx.post(
        f"{stack.base_url}/deployments",
        headers=headers,
        json={
            "name": "jonny-e2e",
            "targets": [{"model": BASE_MODEL}],
            "promotion": {"suffix": "jonny-e2e", "gate": {"require": "better"}},
        },
    )
    assert deployed.status_code == 200, deployed.text
    training = _processed(client, "train.jsonl", jonny_dataset())
    held_out = _processed(
        client, "held-out.jsonl", make_jsonl([chat_example(q, a) for q, a in JONNY_HELD_OUT])
    )

    job = client.fine_tuning.jobs.create(
        model=BASE_MODEL, training_file=training, validation_file=held_out, suffix="jonny-e2e"
    )

    def evaluated() -> dict[str, Any] | None:
        found: Any = client.get(f"/fine_tuning/jobs/{job.id}/evaluation", cast_to=object)
        return found if found["status"] in ("completed", "failed") else None

    evaluation = wait_for(
        lambda: client.fine_tuning.jobs.retrieve(job.id).status == "succeeded" and evaluated() or None,
        "the job and its evaluation",
        timeout_s=180,
    )
    delivery = receiver.requests.get(timeout=60)
    event = client.webhooks.unwrap(delivery.body, delivery.headers, secret=endpoint.signing_secret)
    decision = wait_for(
        lambda: (
            (
                d := httpx.get(f"{stack.base_url}/deployments/jonny-e2e/promotions", headers=headers).json()[
                    "data"
                ]
            )
            and d[0]["status"] != "pending"
            and d[0]
            or None
        ),
        "the gate's decision",
    )

    assert evaluation["status"] == "completed", evaluation["error"]
    assert evaluation["verdict"] == "candidate_better"
    assert (event.type, event.data.id) == ("fine_tuning.job.evaluation.completed", job.id)  # type: ignore[union-attr]
    assert (decision["status"], decision["reason"]) == ("promoted", "gate_passed")
    answer = wait_for(
        lambda: (
            "1957"
            in (
                text := client.chat.completions.create(
                    model="jonny-e2e", messages=[{"role": "user", "content": QUESTION}]
                )
                .choices[0]
                .message.content
                or ""
            )
            and text
            or None
        ),
        "the deployment to answer with the new model",
        timeout_s=30,
    )
    assert "February 22, 1957" in answer
