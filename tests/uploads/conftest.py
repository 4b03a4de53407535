"""The uploads tests drive the app in-process with the official SDK, strict about shapes."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from tests.conftest import sdk_for


@pytest.fixture
def sdk(client: TestClient, tenant_key: str) -> openai.OpenAI:
    return sdk_for(client, tenant_key)
