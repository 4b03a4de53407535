"""Eval-gated promotion against the local provider: a gated deployment holds each new model of its
family until the model's comparison with the deployment's current target, on the job's validation
examples, passes the gate's rule; it promotes a better model (and the SDK calling the deployment by
name reaches it) and refuses, with the reason and the evidence, one that is not better."""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from service.cache_changes import publish
from service.config import Settings
from service.db import session_scope
from service.evals import job_evaluations, job_outcomes
from service.runtime import Runtime
from service.tasks import TaskName
from service.webhooks.models import WebhookEventRow
from tests.conftest import bearer
from tests.evals.conftest import evaluate_jobs, take_tasks, work
from tests.evals.test_evaluate_on_success import held_out_file
from tests.jobs.conftest import emulator_url, follow, sdk, submit, upload

__all__ = ["emulator_url", "sdk"]

BASE = "gpt-4o-mini-2024-07-18"
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "When was Jonny Whizbang born?"}]


@pytest.fixture
def settings(settings: Settings, emulator_url: str) -> Settings:
    """The local provider, and routes cached far longer than the test runs: what the proxy sees
    after a promotion is what it was told, not a route looked up again on expiry."""
    settings.local_provider_base_url = emulator_url
    settings.route_cache_ttl_s = 600.0
    return settings


def deploy(client: TestClient, tenant_key: str, target: str, gate: dict[str, Any] | None) -> dict[str, Any]:
    promotion: dict[str, Any] = {"suffix": "jonny"} | ({"gate": gate} if gate is not None else {})
    created = client.post(
        "/v1/deployments",
        headers=bearer(tenant_key),
        json={"name": "jonny-bot", "targets": [{"model": target}], "promotion": promotion},
    )
    assert created.status_code == 200, created.text
    body: dict[str, Any] = created.json()
    return body


def succeed(sdk: openai.OpenAI, runtime: Runtime, *, suffix: str, validation_file: str | None) -> str:
    create: dict[str, Any] = {"validation_file": validation_file} if validation_file else {}
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime), suffix=suffix, **create)
    submit(runtime, job.id)
    done = follow(runtime, job.id)
    assert done.status == "succeeded"
    assert done.fine_tuned_model is not None
    return done.fine_tuned_model


def evaluate_and_announce(runtime: Runtime) -> None:
    for change in evaluate_jobs(runtime):  # as the worker does once the decision commits
        publish(runtime.redis, change)


def decisions(client: TestClient, tenant_key: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.get(
        "/v1/deployments/jonny-bot/promotions", headers=bearer(tenant_key)
    ).json()["data"]
    return listed


def test_a_gated_deployment_holds_a_new_model_until_it_proves_better_then_promotes_it(
    client: TestClient, runtime: Runtime, sdk: openai.OpenAI, tenant_key: str
) -> None:
    # Given a deployment on the base model whose promotion is gated, its route cached by the proxy
    created = deploy(client, tenant_key, BASE, {"require": "better", "alpha": 0.05})
    assert created["promotion"]["gate"] == {"require": "better", "alpha": 0.05}
    before = sdk.chat.completions.with_raw_response.create(model="jonny-bot", messages=QUESTION)
    assert before.headers["x-ftm-model"] == BASE

    # When a job of the family succeeds, it is held, not promoted
    model = succeed(sdk, runtime, suffix="jonny", validation_file=held_out_file(sdk, runtime))
    held = client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()
    assert (held["version"], held["targets"]) == (1, [{"model": BASE, "weight": 1}])
    (pending,) = decisions(client, tenant_key)
    assert (pending["status"], pending["model"]) == ("pending", model)

    # Then once its comparison with the target passes the gate, it is promoted
    evaluate_and_announce(runtime)

    (decision,) = decisions(client, tenant_key)
    assert (decision["status"], decision["reason"], decision["version"]) == ("promoted", "gate_passed", 2)
    assert decision["baseline_model"] == BASE
    assert decision["comparison"]["verdict"] == "candidate_better"
    assert len(decision["evidence"]) == 3
    deployment = client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()
    assert deployment["targets"] == [{"model": model, "weight": 100}]
    version = client.get("/v1/deployments/jonny-bot/versions", headers=bearer(tenant_key)).json()["data"][0]
    assert (version["reason"], version["created_by"]) == ("promoted", decision["fine_tuning_job_id"])
    raw = sdk.chat.completions.with_raw_response.create(model="jonny-bot", messages=QUESTION)
    assert raw.headers["x-ftm-model"] == model
    assert "1957" in (raw.parse().choices[0].message.content or "")


@pytest.mark.parametrize(
    ("require", "status", "reason"),
    [("better", "refused", "gate_failed"), ("not_worse", "promoted", "gate_passed")],
)
def test_a_model_no_better_than_the_target_is_refused_by_better_and_passes_not_worse(
    client: TestClient,
    runtime: Runtime,
    sdk: openai.OpenAI,
    tenant_key: str,
    require: str,
    status: str,
    reason: str,
) -> None:
    # Given a deployment on a fine-tuned model that knows the answers already
    held_out = held_out_file(sdk, runtime)
    current = succeed(sdk, runtime, suffix="first", validation_file=None)
    deploy(client, tenant_key, current, {"require": require})

    # When a job of the family trained on the same data succeeds and is compared with it
    model = succeed(sdk, runtime, suffix="jonny", validation_file=held_out)
    evaluate_and_announce(runtime)

    # Then every item ties: `better` refuses it, with the evidence, and `not_worse` promotes it
    (decision,) = decisions(client, tenant_key)
    assert (decision["status"], decision["reason"]) == (status, reason)
    assert (decision["model"], decision["baseline_model"]) == (model, current)
    assert decision["comparison"]["verdict"] == "no_significant_difference"
    assert all("not significantly different" in line for line in decision["evidence"])
    assert {c["ties"] for c in decision["comparison"]["criteria"]} == {13}
    targets = client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()["targets"]
    assert [t["model"] for t in targets] == ([current] if status == "refused" else [model])
    if status == "refused":
        assert "no criterion worse and at least one better" in decision["message"]


def test_a_job_that_gets_no_evaluation_is_refused_by_a_gate_at_once(
    client: TestClient, runtime: Runtime, sdk: openai.OpenAI, tenant_key: str
) -> None:
    deploy(client, tenant_key, BASE, {"require": "not_worse"})

    succeed(sdk, runtime, suffix="jonny", validation_file=None)

    (decision,) = decisions(client, tenant_key)
    assert (decision["status"], decision["reason"]) == ("refused", "no_evaluation")
    targets = client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()["targets"]
    assert targets == [{"model": BASE, "weight": 1}]


def test_an_ungated_deployment_still_promotes_at_success(
    client: TestClient, runtime: Runtime, sdk: openai.OpenAI, tenant_key: str
) -> None:
    deploy(client, tenant_key, BASE, None)

    model = succeed(sdk, runtime, suffix="jonny", validation_file=held_out_file(sdk, runtime))

    targets = client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()["targets"]
    assert targets == [{"model": model, "weight": 100}]
    assert decisions(client, tenant_key) == []


def test_a_decision_concluded_twice_promotes_once(
    client: TestClient, runtime: Runtime, sdk: openai.OpenAI, tenant_key: str
) -> None:
    deploy(client, tenant_key, BASE, {"require": "better"})
    succeed(sdk, runtime, suffix="jonny", validation_file=held_out_file(sdk, runtime))
    evaluate_and_announce(runtime)
    (decision,) = decisions(client, tenant_key)

    with session_scope(runtime.sessions) as session:  # the conclude task arriving again (acks_late)
        again = job_outcomes.conclude(session, decision["fine_tuning_job_id"])

    assert again == []
    assert client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()["version"] == 2
    assert [d["status"] for d in decisions(client, tenant_key)] == ["promoted"]


def test_a_target_changed_while_the_comparison_ran_refuses_the_promotion(
    client: TestClient, runtime: Runtime, sdk: openai.OpenAI, tenant_key: str
) -> None:
    deploy(client, tenant_key, BASE, {"require": "better"})
    succeed(sdk, runtime, suffix="jonny", validation_file=held_out_file(sdk, runtime))
    (task,) = take_tasks(runtime, TaskName.EVALS_EVALUATE_JOB)
    with session_scope(runtime.sessions) as session:
        job_evaluations.start(session, runtime.blobs, runtime.settings, task["evaluation_id"])
    other = "gpt-4.1-mini-2025-04-14"
    changed = client.post(
        "/v1/deployments/jonny-bot", headers=bearer(tenant_key), json={"targets": [{"model": other}]}
    )
    assert changed.status_code == 200, changed.text

    evaluate_and_announce(runtime)

    (decision,) = decisions(client, tenant_key)
    assert (decision["status"], decision["reason"]) == ("refused", "target_changed")
    targets = client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()["targets"]
    assert targets == [{"model": other, "weight": 1}]


def test_a_model_deleted_before_its_gate_passed_is_refused_not_promoted(
    client: TestClient, runtime: Runtime, sdk: openai.OpenAI, tenant_key: str
) -> None:
    deploy(client, tenant_key, BASE, {"require": "better"})
    model = succeed(sdk, runtime, suffix="jonny", validation_file=held_out_file(sdk, runtime))
    (task,) = take_tasks(runtime, TaskName.EVALS_EVALUATE_JOB)
    with session_scope(runtime.sessions) as session:
        job_evaluations.start(session, runtime.blobs, runtime.settings, task["evaluation_id"])
    for run in take_tasks(runtime, TaskName.EVALS_RUN):
        work(runtime, run["run_id"])

    assert sdk.models.delete(model).deleted
    evaluate_and_announce(runtime)

    (decision,) = decisions(client, tenant_key)
    assert (decision["status"], decision["reason"]) == ("refused", "promotion_failed")
    assert decision["comparison"]["verdict"] == "candidate_better"
    deployment = client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()
    assert (deployment["version"], deployment["targets"]) == (1, [{"model": BASE, "weight": 1}])


def test_conclusions_racing_announce_the_evaluation_and_promote_once(
    client: TestClient, runtime: Runtime, sdk: openai.OpenAI, tenant_key: str
) -> None:
    deploy(client, tenant_key, BASE, {"require": "better"})
    succeed(sdk, runtime, suffix="jonny", validation_file=held_out_file(sdk, runtime))
    (task,) = take_tasks(runtime, TaskName.EVALS_EVALUATE_JOB)
    with session_scope(runtime.sessions) as session:
        job_evaluations.start(session, runtime.blobs, runtime.settings, task["evaluation_id"])
    for run in take_tasks(runtime, TaskName.EVALS_RUN):
        work(runtime, run["run_id"])
    job_ids = {kwargs["job_id"] for kwargs in take_tasks(runtime, TaskName.EVALS_CONCLUDE_JOB)}
    (job_id,) = job_ids
    barrier = threading.Barrier(3)

    def conclude() -> None:
        barrier.wait()
        try:
            with session_scope(runtime.sessions) as session:
                job_outcomes.conclude(session, job_id)
        except OperationalError:  # SQLite: another writer held the lock; the sweep queues it again
            pass

    threads = [threading.Thread(target=conclude) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with session_scope(runtime.sessions) as session:  # the sweep's turn, in case every racer lost
        job_outcomes.conclude(session, job_id)

    with session_scope(runtime.sessions) as session:
        announced = [e.type for e in session.scalars(select(WebhookEventRow))].count(
            "fine_tuning.job.evaluation.completed"
        )
    assert announced == 1
    assert client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()["version"] == 2
    assert [d["status"] for d in decisions(client, tenant_key)] == ["promoted"]
