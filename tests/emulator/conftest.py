"""Fixtures: an emulator app on a temporary data_dir and a fake clock, driven through the official openai SDK.

Time moves only when a test advances the clock; every request first brings jobs up to date, so
a request after ``clock.advance`` sees everything that became due.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai.types import FileObject
from openai.types.fine_tuning import FineTuningJob

from emulator.app import create_app
from emulator.settings import EmulatorSettings
from tests.emulator.clock import FakeClock
from tests.emulator.samples import chat_jsonl

API_KEY = "sk-local"
STEP = 1.0
# Validation lasts one step and queueing one more; half a step later a job is running, before step 1.
TO_RUNNING = 2.5 * STEP
# Longer than any job of these tests takes (the Jonny file trains 91 steps with auto epochs).
TO_THE_END = 100_000 * STEP


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(data_dir=tmp_path / "emulator", api_key=API_KEY, seconds_per_step=STEP)


@pytest.fixture
def emulator_app(emulator_settings: EmulatorSettings, clock: FakeClock) -> FastAPI:
    return create_app(emulator_settings, clock=clock, background_ticker=False)


@pytest.fixture
def http(emulator_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(emulator_app, base_url="http://testserver") as client:
        yield client


def make_client(http: TestClient, *, strict: bool = True, api_key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(
        base_url="http://testserver/v1",
        api_key=api_key,
        max_retries=0,
        http_client=http,
        _strict_response_validation=strict,
    )


@pytest.fixture
def sdk(http: TestClient) -> openai.OpenAI:
    """The SDK in strict response-validation mode against the in-process emulator."""
    return make_client(http)


@pytest.fixture
def admin(http: TestClient) -> TestClient:
    """Raw HTTP with the bearer key, for the /_emulator endpoints."""
    http.headers["Authorization"] = f"Bearer {API_KEY}"
    return http


def upload(sdk: openai.OpenAI, data: bytes, name: str = "train.jsonl") -> FileObject:
    return sdk.files.create(file=(name, io.BytesIO(data)), purpose="fine-tune")


def finished(job: FineTuningJob) -> bool:
    return job.status in ("succeeded", "failed", "cancelled")


def run_to_end(sdk: openai.OpenAI, clock: FakeClock, job_id: str) -> FineTuningJob:
    """Let the job's whole timeline pass, then read it."""
    clock.advance(TO_THE_END)
    job = sdk.fine_tuning.jobs.retrieve(job_id)
    assert finished(job), job.status
    return job


@pytest.fixture
def trained_job(sdk: openai.OpenAI, clock: FakeClock) -> FineTuningJob:
    """A succeeded job trained on the Jonny Whizbang facts."""
    training = upload(sdk, chat_jsonl())
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=training.id, suffix="jonny", seed=7
    )
    done = run_to_end(sdk, clock, job.id)
    assert done.status == "succeeded", done.error
    return done
