"""Submit and refresh against the local provider over a real socket, through the SDK."""

from __future__ import annotations

from datetime import timedelta

import httpx
import openai
from sqlalchemy import select

from service.clock import utcnow
from service.db import session_scope
from service.jobs import refresh
from service.jobs.models import JobRow
from service.jobs.submission import SubmitOutcome
from service.models.models import FineTunedModelRow
from service.outbox.models import OutboxRow
from service.runtime import Runtime
from service.webhooks.models import WebhookEventRow
from tests.jobs.conftest import follow, submit, upload

BASE = "gpt-4o-mini-2024-07-18"


FINAL_EVENTS = ("fine_tuning.job.succeeded", "fine_tuning.job.failed", "fine_tuning.job.cancelled")


def webhook_events(runtime: Runtime) -> list[tuple[str, str]]:
    """The events that say how a job ended (a file's or a job's start have their own)."""
    with session_scope(runtime.sessions) as session:
        rows = session.scalars(select(WebhookEventRow).where(WebhookEventRow.type.in_(FINAL_EVENTS)))
        return [(e.type, e.data["id"]) for e in rows]


def test_a_job_runs_to_success_and_everything_is_recorded(sdk: openai.OpenAI, runtime: Runtime) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime), suffix="jonny")

    submit(runtime, job.id)
    follow(runtime, job.id)

    done = sdk.fine_tuning.jobs.retrieve(job.id)
    events = sdk.fine_tuning.jobs.list_events(job.id, limit=1000).data
    metrics = [e.data for e in reversed(events) if e.type == "metrics" and isinstance(e.data, dict)]
    checkpoints = sdk.fine_tuning.jobs.checkpoints.list(job.id).data
    assert done.status == "succeeded"
    assert done.fine_tuned_model is not None
    assert done.fine_tuned_model.startswith(f"ft:{BASE}:local:jonny:")
    assert done.trained_tokens
    assert done.trained_tokens > 0
    assert isinstance(done.hyperparameters.n_epochs, int)
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    assert checkpoints
    assert checkpoints[0].fine_tuned_model_checkpoint.startswith(done.fine_tuned_model)
    assert sdk.files.content(done.result_files[0]).text.startswith("step,train_loss,train_accuracy,")
    assert webhook_events(runtime) == [("fine_tuning.job.succeeded", job.id)]
    with session_scope(runtime.sessions) as session:
        owner = session.get(FineTunedModelRow, done.fine_tuned_model)
        assert owner is not None
        assert owner.job_id == job.id


def test_refreshing_a_finished_job_again_changes_nothing_and_sends_no_second_webhook(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    submit(runtime, job.id)
    follow(runtime, job.id)
    before = sdk.fine_tuning.jobs.retrieve(job.id)

    submit(runtime, job.id)
    follow(runtime, job.id)

    assert sdk.fine_tuning.jobs.retrieve(job.id) == before
    assert len(webhook_events(runtime)) == 1


def test_a_lost_create_response_is_adopted_not_created_twice(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    emulator.post(
        "/_emulator/faults",
        json={"drop_next": 1, "drop_phase": "after", "paths": ["/v1/fine_tuning/jobs"], "methods": ["POST"]},
    )

    first = submit(runtime, job.id)
    second = submit(runtime, job.id)

    assert (first, second) == (SubmitOutcome.RETRY, SubmitOutcome.SUBMITTED)
    assert emulator.get("/_emulator/stats").json()["POST /v1/fine_tuning/jobs"] == 1
    assert follow(runtime, job.id).status == "succeeded"


def test_a_provider_outage_before_create_leaves_the_job_waiting_not_failed(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    emulator.post("/_emulator/faults", json={"server_error_next": 1, "paths": ["/v1/fine_tuning/jobs"]})

    outcome = submit(runtime, job.id)

    assert outcome == SubmitOutcome.RETRY
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "validating_files"
    submit(runtime, job.id)
    assert emulator.get("/_emulator/stats").json()["POST /v1/fine_tuning/jobs"] == 1


def test_a_job_the_provider_fails_is_failed_with_its_error_and_one_webhook(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    emulator.post("/_emulator/faults", json={"fail_jobs": 1})

    submit(runtime, job.id)
    done = follow(runtime, job.id)

    assert done.status == "failed"
    assert done.error is not None
    assert done.error["code"]
    assert webhook_events(runtime) == [("fine_tuning.job.failed", job.id)]


def test_a_job_waits_for_its_file_and_fails_when_the_file_is_invalid(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    file_id = upload(sdk, runtime, b'{"messages": []}\n' * 12, validate=False)
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id)

    submit(runtime, job.id)
    waiting = sdk.fine_tuning.jobs.retrieve(job.id).status
    from service.files import service as files

    files.validate_file(runtime.sessions, runtime.blobs, file_id)
    with session_scope(runtime.sessions) as session:
        refresh.kick_waiting_jobs(session, file_id)
    submit(runtime, job.id)

    failed = sdk.fine_tuning.jobs.retrieve(job.id)
    assert waiting == "validating_files"
    assert failed.status == "failed"
    assert failed.error is not None
    assert (failed.error.code, failed.error.param) == ("invalid_training_file", "training_file")


def test_cancel_of_a_submitted_job_cancels_it_at_the_provider(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    emulator.post("/_emulator/faults", json={"seconds_per_step": 5})
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    submit(runtime, job.id)

    cancelled = sdk.fine_tuning.jobs.cancel(job.id)
    emulator.post("/_emulator/faults", json={"seconds_per_step": 0.005})

    assert cancelled.status == "cancelled"
    assert webhook_events(runtime) == [("fine_tuning.job.cancelled", job.id)]


def test_the_sweep_queues_due_jobs_once_per_lease(sdk: openai.OpenAI, runtime: Runtime) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    later = utcnow() + refresh.SWEEP_LEASE + timedelta(seconds=1)

    with session_scope(runtime.sessions) as session:
        at_once = refresh.sweep(session)
    with session_scope(runtime.sessions) as session:
        first = refresh.sweep(session, now=later)
    with session_scope(runtime.sessions) as session:
        second = refresh.sweep(session, now=later)
        queued = [
            r.kwargs for r in session.scalars(select(OutboxRow).where(OutboxRow.task_name == "jobs.submit"))
        ]

    assert (at_once, first, second) == (0, 1, 0)
    assert queued == [{"job_id": job.id}, {"job_id": job.id}]  # one from create, one from the sweep


def test_integrations_reach_the_provider_job(sdk: openai.OpenAI, runtime: Runtime, emulator_url: str) -> None:
    wandb = {"type": "wandb", "wandb": {"project": "jonny"}}
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime), integrations=[wandb])  # type: ignore[list-item]

    submit(runtime, job.id)

    with session_scope(runtime.sessions) as session:
        row = session.get(JobRow, job.id)
        assert row is not None
        provider_job_id = row.provider_job_id
    remote = openai.OpenAI(base_url=emulator_url, api_key="sk-local").fine_tuning.jobs.retrieve(
        provider_job_id or ""
    )
    assert remote.integrations is not None
    assert remote.integrations[0].wandb.project == "jonny"
