"""The blob-store contract, for the directory store and the S3 store alike."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from datetime import timedelta

import pytest

from service.blobs.store import BlobNotFound, BlobStore
from service.clock import utcnow
from service.errors import PayloadTooLarge
from tests.blobs.conftest import SMALL_PART

MIB = 1024 * 1024


def _chunks(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_stored_body_reads_back_with_its_size_and_sha256(store: BlobStore) -> None:
    body = b'{"messages": []}\n' * 1000

    stored = store.put("file-abc", _chunks(body, 4096))

    with store.open("file-abc") as stream:
        read = stream.read()
    assert read == body
    assert (stored.key, stored.size, stored.sha256) == (
        "file-abc",
        len(body),
        hashlib.sha256(body).hexdigest(),
    )
    assert store.exists("file-abc")


def test_a_body_of_several_parts_streams_in_and_reads_back_from_any_offset(store: BlobStore) -> None:
    body = os.urandom(2 * SMALL_PART + 123)

    stored = store.put("file-big", _chunks(body))

    with store.open("file-big") as stream:
        length = stream.seek(0, io.SEEK_END)  # how an HTTP client measures a body without reading it
        stream.seek(SMALL_PART - 10)
        middle = stream.read(20)
        stream.seek(0)
        whole = stream.read()
    assert (stored.size, length) == (len(body), len(body))
    assert middle == body[SMALL_PART - 10 : SMALL_PART + 10]
    assert whole == body


def test_a_body_over_the_limit_leaves_neither_a_blob_nor_an_unfinished_write(store: BlobStore) -> None:
    body = b"x" * (SMALL_PART + 2 * MIB)  # past the first part of a multipart upload

    with pytest.raises(PayloadTooLarge):
        store.put("file-big", _chunks(body), max_bytes=SMALL_PART + MIB)

    assert not store.exists("file-big")
    assert list(store.list_blobs()) == []
    assert store.remove_partial(older_than=utcnow() + timedelta(days=1)) == 0


def test_a_write_that_fails_midway_leaves_no_blob(store: BlobStore) -> None:
    def failing() -> Iterator[bytes]:
        yield b"y" * (SMALL_PART + MIB)
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        store.put("file-cut", failing())

    assert not store.exists("file-cut")
    assert store.remove_partial(older_than=utcnow() + timedelta(days=1)) == 0


def test_a_missing_blob_is_blob_not_found_and_deleting_it_is_harmless(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.open("file-none")

    store.delete("file-none")

    assert not store.exists("file-none")


def test_delete_removes_the_body(store: BlobStore) -> None:
    store.put("file-gone", [b"body"])

    store.delete("file-gone")

    assert not store.exists("file-gone")
    with pytest.raises(BlobNotFound):
        store.open("file-gone")


def test_the_listing_names_every_blob_with_an_aware_write_time(store: BlobStore) -> None:
    before = utcnow() - timedelta(seconds=5)
    for key in ("file-a", "file-b"):
        store.put(key, [b"{}\n"])

    listed = {blob.key: blob.modified_at for blob in store.list_blobs()}

    assert set(listed) == {"file-a", "file-b"}
    assert all(before <= written <= utcnow() + timedelta(seconds=5) for written in listed.values())


@pytest.mark.parametrize("key", ["../etc/passwd", "a/b", ".hidden", "", "file a"])
def test_a_key_that_is_not_a_plain_name_is_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="bad blob key"):
        store.put(key, [b"x"])
