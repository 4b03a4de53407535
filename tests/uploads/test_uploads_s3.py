"""Uploads with bodies in the S3 blob store (a bucket of the test S3 server): parts larger than
the store's multipart part, assembled by a streaming multipart upload."""

from __future__ import annotations

import hashlib
import os

import openai
import pytest

from service.config import Settings
from service.runtime import Runtime
from tests.s3 import use_s3

MIB = 1024 * 1024


@pytest.fixture
def settings(settings: Settings, s3_endpoint: str) -> Settings:
    return use_s3(settings, s3_endpoint).model_copy(update={"s3_part_size_mib": 5})


def test_an_upload_in_the_s3_store_completes_into_a_file_and_its_parts_go(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    # Two parts of 6 MiB and one of 1 MiB: the file is sent to S3 in 5 MiB parts across them.
    chunks = [os.urandom(6 * MIB), os.urandom(6 * MIB), os.urandom(MIB)]
    body = b"".join(chunks)
    upload = sdk.uploads.create(
        bytes=len(body), filename="big.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    parts = [sdk.uploads.parts.create(upload.id, data=chunk) for chunk in chunks]
    stored_parts = sorted(blob.key for blob in runtime.blobs.list_blobs())

    done = sdk.uploads.complete(
        upload.id, part_ids=[part.id for part in parts], md5=hashlib.md5(body).hexdigest()
    )

    assert runtime.settings.blob_store == "s3"
    assert done.file is not None
    assert stored_parts == sorted(part.id for part in parts)
    assert [blob.key for blob in runtime.blobs.list_blobs()] == [done.file.id]
    assert hashlib.sha256(sdk.files.content(done.file.id).content).digest() == hashlib.sha256(body).digest()


def test_an_md5_mismatch_in_the_s3_store_leaves_only_the_parts(sdk: openai.OpenAI, runtime: Runtime) -> None:
    body = os.urandom(6 * MIB)
    upload = sdk.uploads.create(
        bytes=len(body), filename="big.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    part = sdk.uploads.parts.create(upload.id, data=body)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.uploads.complete(upload.id, part_ids=[part.id], md5="0" * 32)

    assert raised.value.param == "md5"
    assert [blob.key for blob in runtime.blobs.list_blobs()] == [part.id]
