"""The files API with bodies in the S3 blob store (a bucket of the test S3 server)."""

from __future__ import annotations

import io

import openai
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.runtime import Runtime
from tests.conftest import sdk_for
from tests.factories import jonny_dataset
from tests.s3 import use_s3


@pytest.fixture
def settings(settings: Settings, s3_endpoint: str) -> Settings:
    return use_s3(settings, s3_endpoint)


@pytest.fixture
def sdk(client: TestClient, tenant_key: str) -> openai.OpenAI:
    return sdk_for(client, tenant_key)


def test_a_file_uploaded_to_the_s3_store_downloads_and_deletes(sdk: openai.OpenAI, runtime: Runtime) -> None:
    body = jonny_dataset()

    created = sdk.files.create(file=("train.jsonl", io.BytesIO(body)), purpose="fine-tune")
    stored = [blob.key for blob in runtime.blobs.list_blobs()]
    downloaded = sdk.files.content(created.id).content
    sdk.files.delete(created.id)

    assert runtime.settings.blob_store == "s3"
    assert stored == [created.id]
    assert downloaded == body
    assert list(runtime.blobs.list_blobs()) == []
    with pytest.raises(openai.NotFoundError):
        sdk.files.content(created.id)
