"""Runs that sample the local provider: routing (base, fine-tuned, deployment), model graders that
the local provider answers by its fixed rule, 429 backoff without sampling twice, cancel, webhook
events, and the comparison of a fine-tuned model with its base model on held-out questions."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db import session_scope
from service.evals.models import EvalRunItemRow, EvalRunRow
from service.evals.runner import Outcome, process_run, sweep
from service.runtime import Runtime
from service.webhooks.models import WebhookEventRow
from tests.conftest import bearer
from tests.evals.conftest import ITEM_SCHEMA, ROUGE_L, completions_source, work
from tests.factories import JONNY_HELD_OUT
from tests.jobs.conftest import follow, submit, upload

BASE = "gpt-4o-mini-2024-07-18"
CHAT = "POST /v1/chat/completions"
ITEMS = [{"question": q, "answer": a} for q, a in JONNY_HELD_OUT]
JUDGE = {
    "type": "label_model",
    "name": "judge",
    "model": BASE,
    "input": [{"role": "user", "content": "Reference: {{item.answer}}\nAnswer: {{sample.output_text}}"}],
    "labels": ["correct", "incorrect"],
    "passing_labels": ["correct"],
}
SCORE = {
    "type": "score_model",
    "name": "score",
    "model": BASE,
    "input": [{"role": "user", "content": "Reference: {{item.answer}}\nAnswer: {{sample.output_text}}"}],
    "range": [0, 10],
    "pass_threshold": 7,
}


def new_eval(sdk: openai.OpenAI, criteria: list[Any]) -> str:
    config: Any = {"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True}
    return sdk.evals.create(name="jonny", data_source_config=config, testing_criteria=criteria).id


@pytest.fixture
def fine_tuned(sdk: openai.OpenAI, runtime: Runtime) -> str:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime), suffix="jonny")
    submit(runtime, job.id)
    model = follow(runtime, job.id).fine_tuned_model
    assert model is not None
    return model


def test_a_fine_tuned_model_beats_its_base_model_on_held_out_questions(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str, fine_tuned: str
) -> None:
    eval_id = new_eval(sdk, [ROUGE_L, JUDGE])
    base = sdk.evals.runs.create(eval_id, name="base", data_source=completions_source(ITEMS, BASE))
    tuned = sdk.evals.runs.create(eval_id, name="tuned", data_source=completions_source(ITEMS, fine_tuned))
    work(runtime, base.id)
    work(runtime, tuned.id)

    response = client.get(
        f"/v1/evals/{eval_id}/runs/{tuned.id}/compare/{base.id}?seed=7", headers=bearer(tenant_key)
    )

    comparison = response.json()
    assert response.status_code == 200
    assert comparison["verdict"] == "candidate_better"
    assert comparison["shared_items"] == len(ITEMS)
    for criterion in comparison["criteria"]:
        assert criterion["verdict"] == "better"
        assert criterion["p_value"] < 0.05
        assert criterion["losses"] == 0
        assert 0 < criterion["ci_low"] <= criterion["mean_difference"] <= criterion["ci_high"]
    again = client.get(
        f"/v1/evals/{eval_id}/runs/{tuned.id}/compare/{base.id}?seed=7", headers=bearer(tenant_key)
    )
    assert again.json() == comparison


def test_a_completions_run_samples_each_item_once_and_records_usage(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client, client: TestClient, tenant_key: str
) -> None:
    eval_id = new_eval(sdk, [ROUGE_L, JUDGE, SCORE])
    source = completions_source(
        ITEMS[:4], BASE, sampling_params={"temperature": 0.2, "seed": 3, "max_completion_tokens": 64}
    )
    run = sdk.evals.runs.create(eval_id, data_source=source)

    work(runtime, run.id)

    done = sdk.evals.runs.retrieve(run.id, eval_id=eval_id)
    assert done.status == "completed"
    assert done.model == BASE
    # 4 samples, then per item one label and one score call: 12 calls, all counted by the provider
    assert emulator.get("/_emulator/stats").json()[CHAT] == 12
    (usage,) = done.per_model_usage
    assert (usage.run_model_name, usage.invocation_count) == (BASE, 12)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    # and in the tenant's usage, under the run's id, as the proxy counts its requests
    counted = client.get("/v1/usage", params={"key_id": run.id}, headers=bearer(tenant_key)).json()["data"]
    assert [(row["model"], row["requests"], row["errors"]) for row in counted] == [(BASE, 12, 0)]
    assert counted[0]["input_tokens"] == usage.prompt_tokens
    assert counted[0]["output_tokens"] == usage.completion_tokens
    item = sdk.evals.runs.output_items.list(run.id, eval_id=eval_id).data[0]
    assert item.sample.input[-1].content == ITEMS[0]["question"]
    assert (item.sample.seed, item.sample.temperature, item.sample.max_completion_tokens) == (3, 0.2, 64)
    assert "don't have specific information" in (item.sample.output[0].content or "")
    assert [(r.name, r.passed) for r in item.results] == [
        ("rouge", False),
        ("judge", False),
        ("score", False),
    ]


def test_a_deployment_is_sampled_through_its_arm(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str, fine_tuned: str
) -> None:
    created = client.post(
        "/v1/deployments",
        json={"name": "jonny-bot", "targets": [{"model": fine_tuned}]},
        headers=bearer(tenant_key),
    )
    assert created.status_code == 200
    eval_id = new_eval(sdk, [ROUGE_L])
    run = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS[:3], "jonny-bot"))

    work(runtime, run.id)

    done = sdk.evals.runs.retrieve(run.id, eval_id=eval_id)
    outputs = [i.sample.output[0].content for i in sdk.evals.runs.output_items.list(run.id, eval_id=eval_id)]
    assert [u.run_model_name for u in done.per_model_usage] == [fine_tuned]
    assert any(item["answer"] == output for item, output in zip(ITEMS, outputs, strict=True))  # only it knows


def test_another_tenants_model_cannot_be_sampled(sdk: openai.OpenAI) -> None:
    eval_id = new_eval(sdk, [ROUGE_L])

    with pytest.raises(openai.NotFoundError) as raised:
        sdk.evals.runs.create(
            eval_id, data_source=completions_source(ITEMS[:1], "ft:gpt-4o-mini-2024-07-18:globex::x")
        )

    assert raised.value.body["param"] == "data_source.model"  # type: ignore[index]


def test_a_rate_limited_provider_is_waited_for_and_no_item_is_sampled_twice(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    eval_id = new_eval(sdk, [ROUGE_L])
    run = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS[:6], BASE))
    emulator.post("/_emulator/faults", json={"rate_limit_next": 2, "retry_after_s": 30})

    first = process_run(runtime.sessions, runtime.providers, runtime.settings, run.id)

    with session_scope(runtime.sessions) as session:
        waiting = session.get_one(EvalRunRow, run.id)
        assert waiting.next_attempt_at is not None
        assert waiting.lease_until is None
        assert sweep(session, runtime.settings, now=waiting.updated_at) == 0  # not due before Retry-After
    assert first == Outcome.BACKING_OFF
    work(runtime, run.id)
    stats = emulator.get("/_emulator/stats").json()
    assert stats[CHAT] == 6  # refused requests are not counted: each item was answered once
    assert sdk.evals.runs.retrieve(run.id, eval_id=eval_id).result_counts.total == 6


def test_an_item_claimed_by_a_dead_worker_is_not_sampled_again(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    eval_id = new_eval(sdk, [ROUGE_L])
    run = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS[:3], BASE))
    with session_scope(runtime.sessions) as session:
        claimed = session.scalars(
            select(EvalRunItemRow).where(
                EvalRunItemRow.run_id == run.id, EvalRunItemRow.datasource_item_id == 0
            )
        ).one()
        claimed.status, claimed.claim_token = "sampling", "lease_dead"

    work(runtime, run.id)

    done = sdk.evals.runs.retrieve(run.id, eval_id=eval_id)
    assert emulator.get("/_emulator/stats").json()[CHAT] == 2
    assert done.result_counts.errored == 1
    first = sdk.evals.runs.output_items.list(run.id, eval_id=eval_id).data[0]
    assert (first.status, first.sample.error.code) == ("error", "sample_interrupted")


def test_a_canceled_run_samples_nothing_more_and_announces_it(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    eval_id = new_eval(sdk, [ROUGE_L])
    run = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS, BASE))
    sdk.evals.runs.cancel(run.id, eval_id=eval_id)

    outcome = process_run(runtime.sessions, runtime.providers, runtime.settings, run.id)

    assert outcome == Outcome.FINISHED
    assert CHAT not in emulator.get("/_emulator/stats").json()
    with session_scope(runtime.sessions) as session:
        events = [(e.type, e.data) for e in session.scalars(select(WebhookEventRow))]
    assert events == [("eval.run.canceled", {"id": run.id})]


def test_a_finished_run_emits_succeeded(sdk: openai.OpenAI, runtime: Runtime) -> None:
    eval_id = new_eval(sdk, [ROUGE_L])
    run = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS[:2], BASE))

    work(runtime, run.id)

    with session_scope(runtime.sessions) as session:
        events = [(e.type, e.data) for e in session.scalars(select(WebhookEventRow))]
    assert events == [("eval.run.succeeded", {"id": run.id})]


def test_a_run_whose_every_item_errors_fails(sdk: openai.OpenAI, runtime: Runtime) -> None:
    eval_id = new_eval(sdk, [{**ROUGE_L, "reference": "{{item.missing}}"}])
    run = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS[:2], BASE))

    work(runtime, run.id)

    done = sdk.evals.runs.retrieve(run.id, eval_id=eval_id)
    assert (done.status, done.error.code, done.result_counts.errored) == ("failed", "all_items_errored", 2)
    item = sdk.evals.runs.output_items.list(run.id, eval_id=eval_id).data[0]
    assert "item.missing" in item.sample.error.message


def test_cosine_is_the_similarity_of_the_providers_embeddings(
    sdk: openai.OpenAI, runtime: Runtime, emulator_url: str
) -> None:
    eval_id = new_eval(
        sdk, [{**ROUGE_L, "name": "cos", "evaluation_metric": "cosine", "pass_threshold": 0.8}]
    )
    run = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS[:1], BASE))

    work(runtime, run.id)

    item = sdk.evals.runs.output_items.list(run.id, eval_id=eval_id).data[0]
    assert item.status != "error", item.sample.error
    answer = item.sample.output[0].content or ""
    local = openai.OpenAI(api_key="sk-local", base_url=emulator_url)
    vectors = [
        row.embedding
        for row in local.embeddings.create(
            model="text-embedding-3-small", input=[answer, ITEMS[0]["answer"]]
        ).data
    ]
    dot = sum(a * b for a, b in zip(*vectors, strict=True))
    norms = math.prod(math.sqrt(sum(x * x for x in vector)) for vector in vectors)
    assert item.results[0].score == pytest.approx(dot / norms, abs=1e-6)


def test_a_tenant_waits_while_its_share_of_runs_is_in_progress(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    eval_id = new_eval(sdk, [ROUGE_L])
    busy = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS[:1], BASE))
    waiting = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS[:1], BASE))
    runtime.settings.evals_tenant_runs = 1
    with session_scope(runtime.sessions) as session:
        held = session.get_one(EvalRunRow, busy.id)
        held.status, held.lease_token = "in_progress", "lease_other"
        held.lease_until = held.created_at.replace(year=held.created_at.year + 1)

    outcome = process_run(runtime.sessions, runtime.providers, runtime.settings, waiting.id)

    assert outcome == Outcome.WAITING
    assert CHAT not in emulator.get("/_emulator/stats").json()
    assert sdk.evals.runs.retrieve(waiting.id, eval_id=eval_id).status == "queued"


def test_cancel_stops_a_run_in_progress_before_its_next_model_call(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    eval_id = new_eval(sdk, [ROUGE_L])
    run = sdk.evals.runs.create(eval_id, data_source=completions_source(ITEMS * 4, BASE))
    emulator.post("/_emulator/faults", json={"latency_ms": 200, "paths": ["/v1/chat/completions"]})
    worker = threading.Thread(
        target=process_run, args=(runtime.sessions, runtime.providers, runtime.settings, run.id)
    )
    worker.start()
    deadline = time.monotonic() + 30
    while not emulator.get("/_emulator/stats").json().get(CHAT) and time.monotonic() < deadline:
        time.sleep(0.05)

    sdk.evals.runs.cancel(run.id, eval_id=eval_id)
    worker.join(30)

    calls = emulator.get("/_emulator/stats").json()[CHAT]
    with session_scope(runtime.sessions) as session:
        left = session.scalars(
            select(EvalRunItemRow).where(EvalRunItemRow.run_id == run.id, EvalRunItemRow.status == "pending")
        ).all()
    assert not worker.is_alive()
    assert sdk.evals.runs.retrieve(run.id, eval_id=eval_id).status == "canceled"
    assert calls < len(ITEMS) * 4  # the rest were never sent
    assert len(left) == len(ITEMS) * 4 - calls
