"""The local provider (the emulator) served on a real socket, and the service pointed at it."""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from emulator.app import create_app as create_emulator
from emulator.settings import EmulatorSettings
from service.config import Settings
from service.db import session_scope
from service.files import encodings
from service.files import service as files
from service.jobs import refresh, submission
from service.jobs.access import PollPolicy, ProviderAccess
from service.jobs.models import JobRow
from service.jobs.submission import SubmitOutcome
from service.runtime import Runtime
from tests.conftest import sdk_for
from tests.factories import jonny_dataset
from tests.servers import serve


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = EmulatorSettings(
        data_dir=tmp_path_factory.mktemp("emulator"),
        api_key="sk-local",
        seconds_per_step=0.005,
        tick_seconds=0.02,
    )
    with serve(create_emulator(settings)) as url:
        yield f"{url}/v1"


@pytest.fixture
def emulator(emulator_url: str) -> Iterator[httpx.Client]:
    """The emulator's admin API (faults, request counts); faults are reset after each test."""
    with httpx.Client(
        base_url=emulator_url.removesuffix("/v1"), headers={"Authorization": "Bearer sk-local"}
    ) as admin:
        admin.delete("/_emulator/stats")
        yield admin
        admin.delete("/_emulator/faults")


@pytest.fixture
def settings(settings: Settings, emulator_url: str) -> Settings:
    settings.local_provider_base_url = emulator_url
    return settings


@pytest.fixture
def sdk(client: TestClient, tenant_key: str) -> openai.OpenAI:
    return sdk_for(client, tenant_key)


def upload(
    sdk: openai.OpenAI,
    runtime: Runtime,
    body: bytes | None = None,
    *,
    validate: bool = True,
    count_pending: bool = True,
) -> str:
    """Upload a file and, as the files worker does, validate it and count its pending encodings."""
    created = sdk.files.create(file=("train.jsonl", io.BytesIO(body or jonny_dataset())), purpose="fine-tune")
    if validate:
        files.validate_file(runtime.sessions, runtime.blobs, created.id)
        if count_pending:
            encodings.count_pending_encodings(runtime.sessions, runtime.blobs, created.id)
    return created.id


def access(runtime: Runtime) -> ProviderAccess:
    """Provider access as a worker has it, refreshing a job whenever asked."""
    return dataclasses.replace(ProviderAccess.from_runtime(runtime), polls=PollPolicy.every(timedelta(0)))


def submit(runtime: Runtime, job_id: str) -> SubmitOutcome:
    return submission.submit(runtime.sessions, job_id, access(runtime))


def follow(runtime: Runtime, job_id: str, timeout_s: float = 30) -> JobRow:
    """Refresh the job until it is final. The local provider here runs on its real clock (a few
    milliseconds a step), so this polls for the final status."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        refresh.refresh(runtime.sessions, job_id, access(runtime))
        with session_scope(runtime.sessions) as session:
            job = session.get_one(JobRow, job_id)
            if job.status in ("succeeded", "failed", "cancelled"):
                return job
        time.sleep(0.05)
    raise AssertionError("the job did not finish")
