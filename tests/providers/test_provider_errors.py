"""The OpenAI provider is the same SDK code pointed at api.openai.com: check what it sends and how
its failures are sorted, with a mocked transport (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2 as httpx
import openai
import pytest
from pydantic import SecretStr

from service.config import Settings
from service.providers.errors import ProviderRejected, ProviderUnavailable
from service.providers.fine_tuning import FineTuningProvider
from service.providers.registry import OPENAI, ProviderRegistry

Handler = Callable[[httpx.Request], httpx.Response]


def provider(handler: Handler) -> FineTuningProvider:
    client = openai.OpenAI(
        api_key="sk-test-openai-key",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    return FineTuningProvider(OPENAI, client)


def job_body(**overrides: object) -> dict[str, object]:
    return {
        "id": "ftjob-abc",
        "object": "fine_tuning.job",
        "created_at": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "organization_id": "org-1",
        "result_files": [],
        "seed": 1,
        "status": "queued",
        "training_file": "file-1",
        "hyperparameters": {"n_epochs": "auto"},
        **overrides,
    }


def test_the_openai_provider_is_registered_only_with_a_key(settings: Settings) -> None:
    settings.openai_api_key = None
    without = ProviderRegistry(settings)
    settings.openai_api_key = SecretStr("sk-real")

    with_key = ProviderRegistry(settings)

    assert OPENAI not in without.configs
    assert with_key.config(OPENAI).base_url == "https://api.openai.com/v1"


def test_create_sends_our_job_id_in_metadata_with_the_providers_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=job_body(metadata={"ftm_job_id": "ftjob-ours"}))

    created = provider(handler).create_job(
        "ftjob-ours", {"model": "gpt-4o-mini-2024-07-18", "training_file": "file-1"}
    )

    assert created.id == "ftjob-abc"
    assert seen[0].url == "https://api.openai.com/v1/fine_tuning/jobs"
    assert seen[0].headers["authorization"] == "Bearer sk-test-openai-key"
    assert json.loads(seen[0].content)["metadata"] == {"ftm_job_id": "ftjob-ours"}


def test_find_job_looks_up_by_metadata_and_ignores_other_jobs() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["metadata[ftm_job_id]"] == "ftjob-ours"
        data = [
            job_body(id="ftjob-x", metadata={"ftm_job_id": "other"}),
            job_body(metadata={"ftm_job_id": "ftjob-ours"}),
        ]
        return httpx.Response(200, json={"object": "list", "data": data, "has_more": False})

    assert provider(handler).find_job("ftjob-ours") is not None


def test_a_429_is_unavailable_with_its_retry_after() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": "300"}, json={"error": {"message": "slow down"}})

    with pytest.raises(ProviderUnavailable) as raised:
        provider(handler).retrieve_job("ftjob-abc")

    assert raised.value.retry_after_s == 300


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_unavailable(status: int) -> None:
    with pytest.raises(ProviderUnavailable):
        provider(lambda _: httpx.Response(status, json={"error": {"message": "boom"}})).retrieve_job("x")


def test_a_connection_error_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderUnavailable):
        provider(handler).retrieve_job("x")


def test_a_400_is_rejected_with_the_providers_message_and_param() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        body = {
            "error": {
                "message": "bad file",
                "type": "invalid_request_error",
                "param": "training_file",
                "code": "invalid_file",
            }
        }
        return httpx.Response(400, json=body)

    with pytest.raises(ProviderRejected) as raised:
        provider(handler).create_job("ftjob-ours", {"model": "m", "training_file": "f"})

    assert (raised.value.status_code, raised.value.param, raised.value.code, raised.value.message) == (
        400,
        "training_file",
        "invalid_file",
        "bad file",
    )


@pytest.mark.parametrize("variable", ["FTM_OPENAI_API_KEY", "OPENAI_API_KEY"])
def test_either_environment_variable_enables_the_openai_provider(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FTM_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv(variable, "sk-from-env")

    settings = Settings(_env_file=None)

    assert ProviderRegistry(settings).config(OPENAI).api_key == "sk-from-env"


def test_an_empty_key_leaves_the_openai_provider_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTM_OPENAI_API_KEY", "")

    assert OPENAI not in ProviderRegistry(Settings(_env_file=None)).configs
