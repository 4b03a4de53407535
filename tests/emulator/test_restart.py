"""State lives under data_dir: a new app on the same directory carries on."""

from __future__ import annotations

import openai
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai.types.fine_tuning import FineTuningJob

from emulator.app import create_app
from emulator.settings import EmulatorSettings
from tests.emulator.clock import FakeClock
from tests.emulator.conftest import TO_RUNNING, make_client, run_to_end, upload
from tests.emulator.samples import chat_jsonl


def _restart(emulator_app: FastAPI, emulator_settings: EmulatorSettings, clock: FakeClock) -> TestClient:
    emulator_app.state.emulator.store.close()
    return TestClient(create_app(emulator_settings, clock=clock, background_ticker=False))


def test_files_jobs_and_models_survive_a_restart(
    emulator_app: FastAPI,
    emulator_settings: EmulatorSettings,
    clock: FakeClock,
    trained_job: FineTuningJob,
    sdk: openai.OpenAI,
) -> None:
    # Given a trained job and its model
    model = trained_job.fine_tuned_model
    assert model is not None
    events_before = [e.id for e in sdk.fine_tuning.jobs.list_events(trained_job.id, limit=1000)]

    # When the emulator restarts on the same data_dir
    with _restart(emulator_app, emulator_settings, clock) as http:
        again = make_client(http)

        # Then the job, its events, files and model are still there, and the model still answers
        assert again.fine_tuning.jobs.retrieve(trained_job.id) == trained_job
        assert [e.id for e in again.fine_tuning.jobs.list_events(trained_job.id, limit=1000)] == events_before
        assert {trained_job.training_file, *trained_job.result_files} <= {f.id for f in again.files.list()}
        assert model in [m.id for m in again.models.list()]
        reply = again.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "When was Jonny Whizbang born?"}]
        )
        assert reply.choices[0].message.content == "Jonny Whizbang was born on February 22, 1957."


def test_a_running_job_finishes_after_a_restart(
    emulator_app: FastAPI, emulator_settings: EmulatorSettings, clock: FakeClock, sdk: openai.OpenAI
) -> None:
    # Given a job in the middle of training
    training = upload(sdk, chat_jsonl())
    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=training.id)
    clock.advance(TO_RUNNING)
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "running"

    # When the emulator restarts
    with _restart(emulator_app, emulator_settings, clock) as http:
        # Then the job carries on to success
        done = run_to_end(make_client(http), clock, job.id)
        assert done.status == "succeeded"
