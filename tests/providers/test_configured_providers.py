"""Several providers at once, by configuration: each serves the models its `models` name, a job's
provider follows its model (or is named), and the proxy routes the same way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.chat import ChatCompletionMessageParam

from emulator.app import create_app as create_emulator
from emulator.settings import EmulatorSettings
from service.config import Settings
from service.db import session_scope
from service.jobs.models import JobRow
from service.providers.registry import ProviderRegistry
from service.runtime import Runtime
from tests.conftest import bearer
from tests.jobs.conftest import emulator_url, submit, upload
from tests.servers import serve

__all__ = ["emulator_url"]

SECOND = "second"
GPT_41 = "gpt-4.1-mini-2025-04-14"
GPT_4O = "gpt-4o-mini-2024-07-18"
LLAMA = "llama-3-8b-instruct"


@pytest.fixture(scope="module")
def second_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = EmulatorSettings(
        data_dir=tmp_path_factory.mktemp("second"),
        api_key="sk-second",
        seconds_per_step=0.005,
        tick_seconds=0.02,
    )
    with serve(create_emulator(settings)) as url:
        yield f"{url}/v1"


@pytest.fixture
def second(second_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=second_url.removesuffix("/v1"), headers={"Authorization": "Bearer sk-second"}
    ) as admin:
        admin.delete("/_emulator/stats")
        yield admin


@pytest.fixture
def settings(
    settings: Settings, emulator_url: str, second_url: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("SECOND_KEY", "sk-second")
    spec = {
        "name": SECOND,
        "base_url": second_url,
        "api_key_env": "SECOND_KEY",
        "models": ["gpt-4.1-*", LLAMA],
    }
    monkeypatch.setenv("FTM_PROVIDERS", json.dumps([spec]))
    configured = Settings(_env_file=None)
    settings.local_provider_base_url = emulator_url
    settings.providers = configured.providers
    return settings


def test_configuration_says_which_provider_serves_which_model(settings: Settings, tmp_path: Path) -> None:
    registry = ProviderRegistry(settings)

    assert registry.config(SECOND).api_key == "sk-second"
    assert registry.provider_for(GPT_41) == SECOND
    assert registry.provider_for(GPT_4O) == "local"  # the default provider, for the rest of the catalog
    assert registry.provider_for(LLAMA) == SECOND  # outside the catalog, callable because it is named
    assert registry.provider_for("gpt-4.1-*") == SECOND
    assert registry.provider_for("no-such-model") is None
    assert registry.served_models() == [(LLAMA, SECOND)]

    listed = tmp_path / "providers.json"
    listed.write_text(json.dumps([{"name": "third", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}]))
    from_file = Settings(_env_file=None, providers_file=listed)
    assert [spec.name for spec in from_file.providers] == [SECOND, "third"]
    with pytest.raises(ValueError, match="unique"):
        Settings(_env_file=None, providers=[*from_file.providers[:1], *from_file.providers[:1]])


def test_the_proxy_sends_each_model_to_its_provider(
    client: TestClient, tenant_key: str, second: httpx.Client
) -> None:
    sdk = openai.OpenAI(api_key=tenant_key, base_url=f"{client.base_url}/v1", http_client=client)
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello?"}]

    to_second = sdk.chat.completions.with_raw_response.create(model=GPT_41, messages=question)
    to_local = sdk.chat.completions.with_raw_response.create(model=GPT_4O, messages=question)

    assert to_second.headers["x-ftm-provider"] == SECOND
    assert to_local.headers["x-ftm-provider"] == "local"
    assert second.get("/_emulator/stats").json()["POST /v1/chat/completions"] == 1
    listed = {model.id for model in sdk.models.list()}
    assert {GPT_41, GPT_4O, LLAMA} <= listed


def test_a_jobs_provider_follows_its_model_or_is_named(
    client: TestClient, runtime: Runtime, tenant_key: str, second: httpx.Client
) -> None:
    sdk = openai.OpenAI(api_key=tenant_key, base_url=f"{client.base_url}/v1", http_client=client)
    training_file = upload(sdk, runtime)

    by_model = sdk.fine_tuning.jobs.create(model=GPT_41, training_file=training_file)
    named = sdk.fine_tuning.jobs.create(
        model=GPT_41, training_file=training_file, extra_body={"provider": "local"}
    )
    refused = client.post(
        "/v1/fine_tuning/jobs",
        json={"model": GPT_41, "training_file": training_file, "provider": "elsewhere"},
        headers=bearer(tenant_key),
    )

    with session_scope(runtime.sessions) as session:
        assert session.get_one(JobRow, by_model.id).provider == SECOND
        assert session.get_one(JobRow, named.id).provider == "local"
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "provider"
    assert submit(runtime, by_model.id).value == "submitted"
    assert second.get("/_emulator/stats").json()["POST /v1/fine_tuning/jobs"] == 1
