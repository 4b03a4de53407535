"""Fixtures for the proxy tests: a fake provider wired into the registry, and the SDK as a caller."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from fastapi.testclient import TestClient

from service.runtime import Runtime
from tests.conftest import sdk_for as sdk
from tests.proxy.fakes import FakeUpstream, attach


@pytest.fixture
def upstream(runtime: Runtime) -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    sync_http = attach(runtime, fake)
    yield fake
    sync_http.close()


@pytest.fixture
def caller(client: TestClient, tenant_key: str, upstream: FakeUpstream) -> openai.OpenAI:
    return sdk(client, tenant_key)
