from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from tests.conftest import bearer

MIB = 1024 * 1024


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"model": "'
    for _ in range(total // MIB):
        yield b"x" * MIB


@pytest.mark.parametrize("path", ["/v1/fine_tuning/jobs", "/v1/chat/completions", "/v1/webhook_endpoints"])
def test_a_json_body_over_the_limit_is_a_413_in_openai_shape(
    client: TestClient, tenant_key: str, path: str
) -> None:
    response = client.post(
        path,
        content=b"{" + b" " * (2 * MIB) + b"}",
        headers={**bearer(tenant_key), "content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_chunked_body_is_counted_as_it_streams_in(client: TestClient, tenant_key: str) -> None:
    headers = {**bearer(tenant_key), "content-type": "application/json"}

    response = client.post("/v1/fine_tuning/jobs", content=_chunks(3 * MIB), headers=headers)

    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_an_upload_may_be_larger_than_a_json_body(
    client: TestClient, tenant_key: str, settings: Settings
) -> None:
    lines = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    body = lines * (2 * MIB // len(lines) + 1)

    response = client.post(
        "/v1/files",
        files={"file": ("big.jsonl", body)},
        data={"purpose": "fine-tune"},
        headers=bearer(tenant_key),
    )

    assert len(body) > settings.max_json_body_bytes
    assert response.status_code == 200, response.text
