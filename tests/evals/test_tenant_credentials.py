"""An eval run of a tenant with its own credentials at the local provider samples with its key."""

from __future__ import annotations

import httpx
import openai
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.config import Settings
from service.runtime import Runtime
from tests.conftest import bearer
from tests.evals.conftest import ITEM_SCHEMA, completions_source, work
from tests.jobs.test_tenant_credentials import ACME, ACME_KEY, CREDENTIALS, OPERATOR, emulator_url

__all__ = ["emulator_url"]

BASE = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.credentials_key = SecretStr(Fernet.generate_key().decode())
    return settings


def test_a_run_samples_with_the_tenants_own_key(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client, admin_key: str
) -> None:
    client.put(CREDENTIALS, json={"api_key": ACME_KEY}, headers=bearer(admin_key))
    config: dict[str, object] = {"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True}
    eval_id = sdk.evals.create(
        name="jonny",
        data_source_config=config,  # type: ignore[arg-type]
        testing_criteria=[
            {"type": "string_check", "name": "s", "input": "a", "reference": "a", "operation": "eq"}
        ],
    ).id
    items = [{"question": "When was Jonny Whizbang born?", "answer": "February 22, 1957."}]
    run = sdk.evals.runs.create(eval_id, data_source=completions_source(items, BASE))

    work(runtime, run.id)

    seen = emulator.get("/_emulator/callers").json()
    assert seen[ACME]["POST /v1/chat/completions"] == 1
    assert OPERATOR not in seen
