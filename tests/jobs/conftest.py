"""The local provider (the emulator) served on a real socket, and the service pointed at it."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from emulator.app import create_app as create_emulator
from emulator.settings import EmulatorSettings
from service.config import Settings
from service.files import service as files
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


def upload(sdk: openai.OpenAI, runtime: Runtime, body: bytes | None = None, *, validate: bool = True) -> str:
    created = sdk.files.create(file=("train.jsonl", io.BytesIO(body or jonny_dataset())), purpose="fine-tune")
    if validate:
        files.validate_file(runtime.sessions, runtime.blobs, created.id)
    return created.id
