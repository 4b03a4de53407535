"""Evaluate on success, against the local provider: a job with a validation file gets, once it
succeeded, its fine-tuned model compared with its base model on the validation examples (held-out
questions worded differently from the training ones); the comparison is linked from the job and
announced by webhook. The job's success never waits for the evaluation."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.clock import utcnow
from service.db import session_scope
from service.evals import job_evaluations, job_outcomes
from service.evals.models import EvalRunRow
from service.files import service as files
from service.runtime import Runtime
from service.tasks import TaskName
from service.webhooks import delivery as webhooks
from service.webhooks.models import WebhookDeliveryRow, WebhookEventRow
from tests.conftest import bearer
from tests.evals.conftest import evaluate_jobs, take_tasks, work
from tests.factories import JONNY_HELD_OUT, chat_example, make_jsonl
from tests.jobs.conftest import follow, submit, upload
from tests.webhooks.conftest import Receiver, dev_guard, make_endpoint, receiver

__all__ = ["receiver"]

BASE = "gpt-4o-mini-2024-07-18"
CHAT = "POST /v1/chat/completions"
COMPLETED = "fine_tuning.job.evaluation.completed"
FAILED = "fine_tuning.job.evaluation.failed"


def held_out_file(sdk: openai.OpenAI, runtime: Runtime) -> str:
    body = make_jsonl([chat_example(q, a) for q, a in JONNY_HELD_OUT])
    created = sdk.files.create(file=("held-out.jsonl", io.BytesIO(body)), purpose="fine-tune")
    files.validate_file(runtime.sessions, runtime.blobs, created.id)
    return created.id


def succeeded_job(sdk: openai.OpenAI, runtime: Runtime, **create: Any) -> str:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime), **create)
    submit(runtime, job.id)
    assert follow(runtime, job.id).status == "succeeded"
    return job.id


def test_a_job_with_a_validation_file_is_evaluated_against_its_base_model_and_beats_it(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str, emulator: httpx.Client
) -> None:
    job_id = succeeded_job(sdk, runtime, validation_file=held_out_file(sdk, runtime))
    queued = sdk.fine_tuning.jobs.retrieve(job_id)

    evaluate_jobs(runtime)

    evaluation: Any = sdk.get(f"/fine_tuning/jobs/{job_id}/evaluation", cast_to=object)  # as the README does
    assert (queued.model_extra or {})["evaluation"]["status"] == "queued"  # the job succeeded first
    assert evaluation["status"] == "completed"
    assert (evaluation["base_model"], evaluation["fine_tuned_model"]) == (BASE, queued.fine_tuned_model)
    assert (evaluation["items"], evaluation["skipped_examples"]) == (len(JONNY_HELD_OUT), 0)
    comparison = evaluation["comparison"]
    assert evaluation["verdict"] == comparison["verdict"] == "candidate_better"
    assert [c["testing_criteria"] for c in comparison["criteria"]] == ["exact", "rouge_l", "fuzzy"]
    for criterion in comparison["criteria"]:
        assert criterion["verdict"] == "better"
        assert criterion["p_value"] < 0.05
        assert criterion["losses"] == 0
    # each item was sampled once per model, through the Celery runner's path
    assert emulator.get("/_emulator/stats").json()[CHAT] == 2 * len(JONNY_HELD_OUT)
    # the runs are an ordinary eval of the tenant's, which the SDK reads in strict mode
    runs = sdk.evals.runs.list(evaluation["eval_id"]).data
    assert {(run.id, run.model, run.status) for run in runs} == {
        (evaluation["base_run_id"], BASE, "completed"),
        (evaluation["fine_tuned_run_id"], queued.fine_tuned_model, "completed"),
    }
    linked = (sdk.fine_tuning.jobs.retrieve(job_id).model_extra or {})["evaluation"]
    assert linked == {
        "id": evaluation["id"],
        "status": "completed",
        "verdict": "candidate_better",
        "eval_id": evaluation["eval_id"],
        "url": f"/v1/fine_tuning/jobs/{job_id}/evaluation",
    }
    listed = sdk.fine_tuning.jobs.list().data[0]
    assert (listed.model_extra or {})["evaluation"] == linked


def test_the_evaluations_webhook_event_is_delivered_and_verifies(
    sdk: openai.OpenAI, runtime: Runtime, receiver: Receiver
) -> None:
    with session_scope(runtime.sessions) as session:
        endpoint = make_endpoint(session, url=receiver.url, event_types=[COMPLETED])
        secret = endpoint.secret
    job_id = succeeded_job(sdk, runtime, validation_file=held_out_file(sdk, runtime))

    evaluate_jobs(runtime)

    with session_scope(runtime.sessions) as session:
        (delivery,) = session.scalars(select(WebhookDeliveryRow)).all()
        with httpx.Client() as http:
            webhooks.deliver(session, delivery.id, http=http, guard=dev_guard(), now=utcnow())
    (received,) = receiver.requests
    event = sdk.webhooks.unwrap(received.body, received.headers, secret=secret)
    assert (event.type, event.data.id) == (COMPLETED, job_id)  # type: ignore[union-attr]


def test_a_job_without_a_validation_file_gets_no_evaluation(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str
) -> None:
    job_id = succeeded_job(sdk, runtime)

    response = client.get(f"/v1/fine_tuning/jobs/{job_id}/evaluation", headers=bearer(tenant_key))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "evaluation_not_found"
    assert (sdk.fine_tuning.jobs.retrieve(job_id).model_extra or {})["evaluation"] is None
    assert take_tasks(runtime, TaskName.EVALS_EVALUATE_JOB) == []


def test_an_evaluation_can_be_switched_off_or_asked_for_on_another_file(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str
) -> None:
    held_out = held_out_file(sdk, runtime)
    off = succeeded_job(sdk, runtime, validation_file=held_out, extra_body={"evaluation": {"enabled": False}})
    named = succeeded_job(sdk, runtime, extra_body={"evaluation": {"file": held_out}})

    evaluate_jobs(runtime)

    assert client.get(f"/v1/fine_tuning/jobs/{off}/evaluation", headers=bearer(tenant_key)).status_code == 404
    evaluation = client.get(f"/v1/fine_tuning/jobs/{named}/evaluation", headers=bearer(tenant_key)).json()
    assert (evaluation["file_id"], evaluation["status"]) == (held_out, "completed")


def test_an_evaluation_with_its_own_criteria_uses_them(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str
) -> None:
    criteria = [
        {
            "type": "text_similarity",
            "name": "bleu",
            "input": "{{sample.output_text}}",
            "reference": "{{item.reference}}",
            "evaluation_metric": "bleu",
            "pass_threshold": 0.5,
        }
    ]
    job_id = succeeded_job(
        sdk,
        runtime,
        validation_file=held_out_file(sdk, runtime),
        extra_body={"evaluation": {"testing_criteria": criteria}},
    )

    evaluate_jobs(runtime)

    evaluation = client.get(f"/v1/fine_tuning/jobs/{job_id}/evaluation", headers=bearer(tenant_key)).json()
    assert [c["testing_criteria"] for c in evaluation["comparison"]["criteria"]] == ["bleu"]
    assert evaluation["verdict"] == "candidate_better"


def test_bad_evaluation_options_are_refused_when_the_job_is_created(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    training = upload(sdk, runtime)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.fine_tuning.jobs.create(
            model=BASE,
            training_file=training,
            extra_body={"evaluation": {"testing_criteria": [{"type": "python", "name": "p"}]}},
        )
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.fine_tuning.jobs.create(
            model=BASE, training_file=training, extra_body={"evaluation": {"file": "file-nope"}}
        )

    assert raised.value.body["param"] == "evaluation.testing_criteria[0].type"  # type: ignore[index]
    assert missing.value.body["param"] == "evaluation.file"  # type: ignore[index]


def test_an_evaluation_that_cannot_be_made_fails_with_its_reason_and_the_job_stays_succeeded(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str
) -> None:
    judge = {
        "type": "label_model",
        "name": "judge",
        "model": "ft:gpt-4o-mini-2024-07-18:globex::x",  # not this tenant's to call
        "input": [{"role": "user", "content": "{{sample.output_text}}"}],
        "labels": ["good", "bad"],
        "passing_labels": ["good"],
    }
    job_id = succeeded_job(
        sdk,
        runtime,
        validation_file=held_out_file(sdk, runtime),
        extra_body={"evaluation": {"testing_criteria": [judge]}},
    )

    evaluate_jobs(runtime)

    evaluation = client.get(f"/v1/fine_tuning/jobs/{job_id}/evaluation", headers=bearer(tenant_key)).json()
    assert evaluation["status"] == "failed"
    assert evaluation["error"]["code"] == "model_not_found"
    assert sdk.fine_tuning.jobs.retrieve(job_id).status == "succeeded"
    with session_scope(runtime.sessions) as session:
        types = [event.type for event in session.scalars(select(WebhookEventRow))]
    assert FAILED in types
    assert COMPLETED not in types


def test_an_evaluation_started_twice_creates_its_runs_once(sdk: openai.OpenAI, runtime: Runtime) -> None:
    job_id = succeeded_job(sdk, runtime, validation_file=held_out_file(sdk, runtime))
    (task,) = take_tasks(runtime, TaskName.EVALS_EVALUATE_JOB)

    for _ in range(2):  # acks_late: the task can arrive twice
        with session_scope(runtime.sessions) as session:
            job_evaluations.start(session, runtime.blobs, runtime.settings, task["evaluation_id"])

    with session_scope(runtime.sessions) as session:
        runs = session.scalars(select(EvalRunRow)).all()
        evaluation = job_evaluations.get_for_job(session, tenant_id=runs[0].tenant_id, job_id=job_id)
    assert len(runs) == 2
    assert evaluation.status == "running"


def test_a_run_that_is_canceled_fails_the_evaluation(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str
) -> None:
    job_id = succeeded_job(sdk, runtime, validation_file=held_out_file(sdk, runtime))
    (task,) = take_tasks(runtime, TaskName.EVALS_EVALUATE_JOB)
    with session_scope(runtime.sessions) as session:
        job_evaluations.start(session, runtime.blobs, runtime.settings, task["evaluation_id"])
    started = client.get(f"/v1/fine_tuning/jobs/{job_id}/evaluation", headers=bearer(tenant_key)).json()

    sdk.evals.runs.cancel(started["base_run_id"], eval_id=started["eval_id"])
    evaluate_jobs(runtime)

    evaluation = client.get(f"/v1/fine_tuning/jobs/{job_id}/evaluation", headers=bearer(tenant_key)).json()
    assert (evaluation["status"], evaluation["error"]["code"]) == ("failed", "run_not_completed")
    assert "canceled" in evaluation["error"]["message"]


def test_the_sweep_queues_again_what_a_lost_task_left(sdk: openai.OpenAI, runtime: Runtime) -> None:
    job_id = succeeded_job(sdk, runtime, validation_file=held_out_file(sdk, runtime))
    (task,) = take_tasks(runtime, TaskName.EVALS_EVALUATE_JOB)  # and lost
    later = utcnow() + timedelta(minutes=10)

    with session_scope(runtime.sessions) as session:
        swept = job_outcomes.sweep(session, now=later)
    assert (swept, take_tasks(runtime, TaskName.EVALS_EVALUATE_JOB)) == (1, [task])
    with session_scope(runtime.sessions) as session:
        job_evaluations.start(session, runtime.blobs, runtime.settings, task["evaluation_id"])
    for run in take_tasks(runtime, TaskName.EVALS_RUN):
        work(runtime, run["run_id"])
    take_tasks(runtime, TaskName.EVALS_CONCLUDE_JOB)  # and lost

    with session_scope(runtime.sessions) as session:
        swept = job_outcomes.sweep(session, now=later)
    assert (swept, take_tasks(runtime, TaskName.EVALS_CONCLUDE_JOB)) == (1, [{"job_id": job_id}])
