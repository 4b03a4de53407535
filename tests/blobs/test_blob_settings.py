"""Which blob store a process uses, from its settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from service.blobs.backends import create_blob_store
from service.blobs.directory import DirectoryBlobStore
from service.blobs.s3 import S3BlobStore
from service.config import Settings


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_the_default_store_is_the_blob_directory_under_the_data_dir(tmp_path: Path) -> None:
    store = create_blob_store(_settings(tmp_path))

    assert isinstance(store, DirectoryBlobStore)
    assert store.root == tmp_path / "blobs"


def test_the_s3_store_needs_a_bucket(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="FTM_S3_BUCKET"):
        _settings(tmp_path, blob_store="s3")


def test_the_s3_store_uses_the_bucket_prefix_and_endpoint_it_is_given(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        blob_store="s3",
        s3_bucket="ftm-bodies",
        s3_prefix="/prod/blobs",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_region="eu-west-1",
        s3_access_key_id="id",
        s3_secret_access_key=SecretStr("a-secret-value"),
    )

    store = create_blob_store(settings)

    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("ftm-bodies", "prod/blobs/")
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9"
    store.close()


def test_the_s3_secret_never_shows_in_the_settings(tmp_path: Path) -> None:
    settings = _settings(tmp_path, blob_store="s3", s3_bucket="b", s3_secret_access_key="a-secret-value")

    assert "a-secret-value" not in repr(settings)
    assert "a-secret-value" not in str(settings.model_dump())


def test_empty_s3_variables_from_compose_mean_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("FTM_S3_ENDPOINT_URL", "FTM_S3_REGION", "FTM_S3_ACCESS_KEY_ID", "FTM_S3_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "")

    settings = _settings(tmp_path)

    assert (settings.s3_endpoint_url, settings.s3_region) == (None, None)
    assert (settings.s3_access_key_id, settings.s3_secret_access_key) == (None, None)
