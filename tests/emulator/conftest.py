"""Fixtures: an emulator app on a temporary data_dir, driven through the official openai SDK."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai.types import FileObject
from openai.types.fine_tuning import FineTuningJob

from emulator.app import create_app
from emulator.settings import EmulatorSettings
from tests.emulator.samples import chat_jsonl

API_KEY = "sk-local"
FAST_STEP = 0.005


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        data_dir=tmp_path / "emulator", api_key=API_KEY, seconds_per_step=FAST_STEP, tick_seconds=0.05
    )


@pytest.fixture
def emulator_app(emulator_settings: EmulatorSettings) -> FastAPI:
    return create_app(emulator_settings)


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


def wait_for(
    sdk: openai.OpenAI, job_id: str, until: Callable[[FineTuningJob], bool], timeout: float = 10.0
) -> FineTuningJob:
    """Poll the job until ``until`` holds (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        job = sdk.fine_tuning.jobs.retrieve(job_id)
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stuck in {job.status}")
        time.sleep(0.01)


def finished(job: FineTuningJob) -> bool:
    return job.status in ("succeeded", "failed", "cancelled")


@pytest.fixture
def trained_job(sdk: openai.OpenAI) -> FineTuningJob:
    """A succeeded job trained on the Jonny Whizbang facts."""
    training = upload(sdk, chat_jsonl())
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=training.id, suffix="jonny", seed=7
    )
    done = wait_for(sdk, job.id, finished)
    assert done.status == "succeeded", done.error
    return done
