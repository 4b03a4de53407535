"""Against the local provider itself (the emulator on a real socket): what the proxy records equals
the usage the provider reports for the same requests, JSON and streams alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai.types.chat import ChatCompletionMessageParam

from emulator.app import create_app as create_emulator
from emulator.settings import EmulatorSettings
from service.config import Settings
from tests.conftest import sdk_for
from tests.servers import serve
from tests.usage.conftest import flushed_usage, totals

BASE = "gpt-4o-mini-2024-07-18"
QUESTIONS = ["When was Jonny Whizbang born?", "Say hello.", "Name three colours."]


@pytest.fixture
def emulator_url(tmp_path: Path) -> Iterator[str]:
    with serve(create_emulator(EmulatorSettings(data_dir=tmp_path / "emulator", api_key="sk-local"))) as url:
        yield f"{url}/v1"


@pytest.fixture
def settings(settings: Settings, emulator_url: str) -> Settings:
    settings.local_provider_base_url = emulator_url
    return settings


def messages(question: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": question}]


def test_recorded_usage_equals_the_local_providers_own_count(
    app: FastAPI, client: TestClient, tenant_key: str, emulator_url: str
) -> None:
    proxied = sdk_for(client, tenant_key)
    proxied.chat.completions.create(model=BASE, messages=messages(QUESTIONS[0]))
    list(proxied.chat.completions.create(model=BASE, messages=messages(QUESTIONS[1]), stream=True))
    list(
        proxied.chat.completions.create(
            model=BASE, messages=messages(QUESTIONS[2]), stream=True, stream_options={"include_usage": True}
        )
    )
    direct = openai.OpenAI(base_url=emulator_url, api_key="sk-local", max_retries=0)
    reported = [direct.chat.completions.create(model=BASE, messages=messages(q)).usage for q in QUESTIONS]

    usage = totals(flushed_usage(app, client, tenant_key))

    assert usage == {
        "requests": 3,
        "errors": 0,
        "input_tokens": sum(u.prompt_tokens for u in reported if u),
        "output_tokens": sum(u.completion_tokens for u in reported if u),
    }
    assert usage["output_tokens"] > 0
