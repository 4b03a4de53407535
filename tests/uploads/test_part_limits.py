"""A part's size limit holds twice: a declared body over it is refused before any of it is read,
and a body that grows past it as it streams is cut off; both are a 413 and store nothing."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.runtime import Runtime
from tests.conftest import bearer

PART_LIMIT = 1000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"uploads_max_part_bytes": PART_LIMIT})


def _pending(sdk: openai.OpenAI) -> str:
    return sdk.uploads.create(
        bytes=10 * PART_LIMIT, filename="t.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    ).id


def test_a_declared_body_over_the_part_limit_is_refused_before_it_is_read(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str, runtime: Runtime
) -> None:
    upload_id = _pending(sdk)

    answer = client.post(
        f"/v1/uploads/{upload_id}/parts", headers=bearer(tenant_key), files={"data": ("p", b"x" * 200_000)}
    )

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert list(runtime.blobs.list_blobs()) == []


def test_a_part_over_the_limit_within_the_framing_allowance_is_cut_off_naming_data(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    upload_id = _pending(sdk)

    with pytest.raises(openai.APIStatusError) as raised:
        sdk.uploads.parts.create(upload_id, data=b"x" * (PART_LIMIT + 1))

    assert raised.value.status_code == 413
    assert raised.value.body == {
        "message": f"A part may be at most {PART_LIMIT} bytes.",
        "type": "invalid_request_error",
        "param": "data",
        "code": "part_too_large",
    }
    assert list(runtime.blobs.list_blobs()) == []


def test_a_part_of_exactly_the_limit_is_taken(sdk: openai.OpenAI) -> None:
    upload_id = _pending(sdk)

    part = sdk.uploads.parts.create(upload_id, data=b"x" * PART_LIMIT)

    assert part.upload_id == upload_id
