"""Each blob-store test runs against both stores: a directory, and a bucket of the test S3 server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.blobs.backends import create_blob_store
from service.blobs.store import BlobStore
from service.config import Settings
from tests.s3 import use_s3

SMALL_PART = 5 * 1024 * 1024  # S3's smallest part, so multipart uploads happen on a few MiB


@pytest.fixture(params=["dir", "s3"])
def store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "dir":
        return settings
    endpoint: str = request.getfixturevalue("s3_endpoint")
    return use_s3(settings, endpoint).model_copy(update={"s3_part_size_mib": SMALL_PART // (1024 * 1024)})


@pytest.fixture
def store(store_settings: Settings) -> Iterator[BlobStore]:
    blobs = create_blob_store(store_settings)
    yield blobs
    blobs.close()
