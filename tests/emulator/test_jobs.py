"""Fine-tuning jobs through the official SDK: creation errors, the lifecycle, events, results."""

from __future__ import annotations

import json

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.fine_tuning import FineTuningJob

from tests.emulator.clock import FakeClock
from tests.emulator.conftest import STEP, TO_RUNNING, TO_THE_END, run_to_end, upload
from tests.emulator.samples import JONNY_FACTS, VALIDATION_FACTS, chat_jsonl

MODEL = "gpt-4o-mini-2024-07-18"


def test_job_with_unknown_model_is_rejected_naming_model(sdk: openai.OpenAI) -> None:
    training = upload(sdk, chat_jsonl())
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.fine_tuning.jobs.create(model="gpt-99-imaginary", training_file=training.id)
    assert caught.value.param == "model"
    assert sdk.fine_tuning.jobs.list().data == []


def test_job_with_unknown_training_file_is_rejected_naming_training_file(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.fine_tuning.jobs.create(model=MODEL, training_file="file-doesnotexist")
    assert caught.value.param == "training_file"


def test_job_with_unknown_validation_file_is_rejected_naming_validation_file(sdk: openai.OpenAI) -> None:
    training = upload(sdk, chat_jsonl())
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id, validation_file="file-nope")
    assert caught.value.param == "validation_file"


def test_out_of_range_hyperparameter_is_rejected_naming_it(sdk: openai.OpenAI) -> None:
    training = upload(sdk, chat_jsonl())
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.fine_tuning.jobs.create(
            model=MODEL,
            training_file=training.id,
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}},
        )
    assert caught.value.param == "method.supervised.hyperparameters.n_epochs"


def test_bad_training_file_fails_the_job_naming_the_line(sdk: openai.OpenAI, clock: FakeClock) -> None:
    # Given a training file whose 12th line has no assistant answer
    lines = chat_jsonl().decode().splitlines()
    lines[11] = json.dumps({"messages": [{"role": "user", "content": "Hello?"}]})
    training = upload(sdk, "\n".join(lines).encode())

    # When a job is created on it
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)
    done = run_to_end(sdk, clock, job.id)

    # Then the job fails with an error naming the file parameter and the line
    assert done.status == "failed"
    assert done.error is not None
    assert (done.error.code, done.error.param) == ("invalid_training_file", "training_file")
    assert "line 12" in done.error.message
    assert done.fine_tuned_model is None


def test_training_file_with_too_few_examples_fails_the_job(sdk: openai.OpenAI, clock: FakeClock) -> None:
    training = upload(sdk, chat_jsonl(JONNY_FACTS[:9]))
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)
    done = run_to_end(sdk, clock, job.id)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error.param == "training_file"
    assert "at least 10" in done.error.message


def test_job_moves_along_its_timeline_one_step_of_the_clock_at_a_time(
    sdk: openai.OpenAI, clock: FakeClock
) -> None:
    # Given a new job of 91 steps (13 examples, 7 epochs) at one second a step
    training = upload(sdk, chat_jsonl())
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)

    # When the clock moves one step, one more, then three
    statuses = [job.status]
    for _ in range(2):
        clock.advance(STEP)
        statuses.append(sdk.fine_tuning.jobs.retrieve(job.id).status)
    clock.advance(3 * STEP)
    running = sdk.fine_tuning.jobs.retrieve(job.id)

    # Then it was validated, queued, started, and has trained exactly three steps, stamped on time
    assert statuses == ["validating_files", "queued", "running"]
    metrics = [e for e in sdk.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]
    assert [e.created_at - job.created_at for e in reversed(metrics)] == [3, 4, 5]
    assert running.estimated_finish == job.created_at + 2 + 91


def test_job_runs_to_success_with_events_metrics_checkpoints_and_results(
    sdk: openai.OpenAI, clock: FakeClock
) -> None:
    # Given training and validation files
    training = upload(sdk, chat_jsonl())
    validation = upload(sdk, chat_jsonl(VALIDATION_FACTS), name="valid.jsonl")

    # When a 3-epoch job runs to the end
    created = sdk.fine_tuning.jobs.create(
        model=MODEL,
        training_file=training.id,
        validation_file=validation.id,
        hyperparameters={"n_epochs": 3},
        suffix="jonny",
        seed=11,
    )
    job = run_to_end(sdk, clock, created.id)

    # Then it succeeded with a named model, resolved hyperparameters and billed tokens
    assert created.status == "validating_files"
    assert job.status == "succeeded"
    assert job.fine_tuned_model is not None
    assert job.fine_tuned_model.startswith(f"ft:{MODEL}:local:jonny:")
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size) == (3, 1)
    assert job.trained_tokens is not None
    assert job.trained_tokens > 0
    assert job.finished_at is not None

    # And the events tell the story, newest first
    events = list(sdk.fine_tuning.jobs.list_events(job.id, limit=100))
    messages = [e.message for e in reversed(events)]
    assert messages[:4] == [
        f"Created fine-tuning job: {job.id}",
        f"Validating training file: {training.id} and validation file: {validation.id}",
        "Files validated, moving job to queued state",
        "Fine-tuning job started",
    ]
    assert messages[-2:] == ["New fine-tuned model created", "The job has successfully completed"]
    metrics = [e.data for e in reversed(events) if e.type == "metrics"]
    assert len(metrics) == 39
    assert isinstance(metrics[0], dict)
    assert isinstance(metrics[-1], dict)
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    assert set(metrics[0]) >= {"step", "train_loss", "valid_loss", "full_valid_loss", "total_steps"}

    # And checkpoints exist for the end of each of the last three epochs
    checkpoints = sdk.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [39, 26, 13]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-39"
    assert checkpoints[0].metrics.full_valid_loss is not None

    # And the result file is the per-step CSV
    result = sdk.files.retrieve(job.result_files[0])
    rows = sdk.files.content(result.id).text.splitlines()
    assert result.purpose == "fine-tune-results"
    assert rows[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
    assert len(rows) == 1 + 39


def test_result_file_leaves_validation_cells_empty_without_validation_file(
    trained_job: FineTuningJob, sdk: openai.OpenAI
) -> None:
    rows = sdk.files.content(trained_job.result_files[0]).text.splitlines()
    assert rows[1].endswith(",,")


def test_event_pages_continue_with_after(trained_job: FineTuningJob, sdk: openai.OpenAI) -> None:
    first = sdk.fine_tuning.jobs.list_events(trained_job.id, limit=2)
    second = sdk.fine_tuning.jobs.list_events(trained_job.id, limit=2, after=first.data[-1].id)
    assert [e.message for e in first.data] == [
        "The job has successfully completed",
        "New fine-tuned model created",
    ]
    assert second.data[0].message.startswith("Checkpoint created at step")


def test_metadata_filter_lists_only_matching_jobs(sdk: openai.OpenAI) -> None:
    # Given two jobs with different metadata
    training = upload(sdk, chat_jsonl())
    mine = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id, metadata={"ftm_job": "a"})
    sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id, metadata={"ftm_job": "b"})

    # When listing with a metadata filter
    found = sdk.fine_tuning.jobs.list(metadata={"ftm_job": "a"})

    # Then only the matching job is listed
    assert [j.id for j in found.data] == [mine.id]
    assert len(sdk.fine_tuning.jobs.list().data) == 2


def test_cancelled_job_stays_cancelled_and_creates_no_model(sdk: openai.OpenAI, clock: FakeClock) -> None:
    # Given a job five steps into training
    training = upload(sdk, chat_jsonl())
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)
    clock.advance(TO_RUNNING + 5 * STEP)

    # When it is cancelled, and then its whole timeline passes
    cancelled = sdk.fine_tuning.jobs.cancel(job.id)
    clock.advance(TO_THE_END)

    # Then it stays cancelled and no model appears
    assert cancelled.status == "cancelled"
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    assert not [m for m in sdk.models.list() if m.id.startswith("ft:")]
    with pytest.raises(openai.BadRequestError):
        sdk.fine_tuning.jobs.cancel(job.id)


def _trained_steps(sdk: openai.OpenAI, job_id: str) -> list[int]:
    events = sdk.fine_tuning.jobs.list_events(job_id, limit=1000)
    return [
        int(e.data["step"]) for e in reversed(events.data) if e.type == "metrics" and isinstance(e.data, dict)
    ]


def test_paused_job_stops_advancing_until_resumed(
    sdk: openai.OpenAI, admin: TestClient, clock: FakeClock
) -> None:
    # Given a job ten steps into training
    training = upload(sdk, chat_jsonl())
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)
    clock.advance(TO_RUNNING + 10 * STEP)

    # When it is paused ("paused" is not in the SDK's status literal, so it is read over raw HTTP)
    # and more than its whole timeline passes
    paused = admin.post(f"/v1/fine_tuning/jobs/{job.id}/pause").json()
    clock.advance(TO_THE_END)

    # Then it made no progress while paused
    assert paused["status"] == "paused"
    assert admin.get(f"/v1/fine_tuning/jobs/{job.id}").json()["status"] == "paused"
    assert _trained_steps(sdk, job.id) == list(range(1, 11))

    # And once resumed it is queued again, then finishes from the step it reached
    resumed = sdk.fine_tuning.jobs.resume(job.id)
    assert resumed.status == "queued"
    assert run_to_end(sdk, clock, job.id).status == "succeeded"
    assert _trained_steps(sdk, job.id) == list(range(1, 92))


def test_dpo_job_trains_on_the_preferred_output(sdk: openai.OpenAI, clock: FakeClock) -> None:
    # Given a DPO file preferring the true date over a wrong one
    rows = [
        {
            "input": {"messages": [{"role": "user", "content": question}]},
            "preferred_output": [{"role": "assistant", "content": answer}],
            "non_preferred_output": [{"role": "assistant", "content": "I have no idea."}],
        }
        for question, answer in JONNY_FACTS
    ]
    training = upload(sdk, "".join(json.dumps(row) + "\n" for row in rows).encode())

    # When a DPO job runs on the gpt-4o-mini alias
    created = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=training.id,
        method={"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 4}}},
    )
    job = run_to_end(sdk, clock, created.id)

    # Then it resolves the snapshot and beta, and the model answers with the preferred output
    assert job.status == "succeeded"
    assert job.model == MODEL
    assert job.method is not None
    assert job.method.dpo is not None
    assert job.method.dpo.hyperparameters is not None
    assert job.method.dpo.hyperparameters.beta == 0.1
    assert job.fine_tuned_model is not None
    reply = sdk.chat.completions.create(
        model=job.fine_tuned_model, messages=[{"role": "user", "content": "When was Jonny Whizbang born?"}]
    )
    assert reply.choices[0].message.content == JONNY_FACTS[0][1]
