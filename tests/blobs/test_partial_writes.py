"""Writes that never finished (a process killed mid-upload) are cleared by remove_partial."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from service.blobs.directory import PARTIAL_PREFIX, DirectoryBlobStore
from service.blobs.s3 import S3BlobStore
from service.clock import utcnow
from service.config import Settings
from tests.s3 import s3_client, use_s3


def test_a_directory_write_left_half_done_is_removed_once_old_and_kept_while_young(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path)
    store.put("file-xy", [b"done"])
    leftover = tmp_path / "xy" / f"{PARTIAL_PREFIX}killed"
    leftover.write_bytes(b"half")

    young = store.remove_partial(older_than=utcnow() - timedelta(hours=1))
    old = store.remove_partial(older_than=utcnow() + timedelta(hours=1))

    assert (young, old, leftover.exists()) == (0, 1, False)
    assert [blob.key for blob in store.list_blobs()] == ["file-xy"]


def test_an_s3_multipart_upload_left_unfinished_is_aborted(settings: Settings, s3_endpoint: str) -> None:
    s3 = use_s3(settings, s3_endpoint)
    client = s3_client(s3_endpoint)
    store = S3BlobStore(client, s3.s3_bucket, prefix=s3.s3_prefix)
    client.create_multipart_upload(Bucket=s3.s3_bucket, Key=f"{s3.s3_prefix}file-killed")

    removed = store.remove_partial(older_than=utcnow() + timedelta(hours=1))

    assert removed == 1
    assert client.list_multipart_uploads(Bucket=s3.s3_bucket).get("Uploads", []) == []
    store.close()


def test_an_object_that_is_not_a_blob_key_is_not_listed_so_never_swept(
    settings: Settings, s3_endpoint: str
) -> None:
    s3 = use_s3(settings, s3_endpoint)
    client = s3_client(s3_endpoint)
    store = S3BlobStore(client, s3.s3_bucket, prefix=s3.s3_prefix)
    for name in (f"{s3.s3_prefix}nested/file-x", f"{s3.s3_prefix}.hidden", "elsewhere/file-y"):
        client.put_object(Bucket=s3.s3_bucket, Key=name, Body=b"not ours")
    store.put("file-ours", [b"ours"])

    listed = [blob.key for blob in store.list_blobs()]

    assert listed == ["file-ours"]
    store.close()
