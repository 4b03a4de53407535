"""`compose`: blobs concatenated into a new one by streaming, with the MD5 of the whole, for the
directory store and the S3 store alike (on S3 across several multipart parts)."""

from __future__ import annotations

import hashlib
import os

import pytest

from service.blobs.store import BlobNotFound, BlobStore, compose
from service.errors import PayloadTooLarge
from tests.blobs.conftest import SMALL_PART


def test_composed_blobs_read_back_in_order_with_md5_and_sha256(store: BlobStore) -> None:
    pieces = [os.urandom(SMALL_PART + 123), os.urandom(17), os.urandom(SMALL_PART)]
    for index, piece in enumerate(pieces):
        store.put(f"part_{index}", [piece])
    whole = pieces[2] + pieces[0] + pieces[1]

    composed = compose(store, "file-whole", ["part_2", "part_0", "part_1"])

    with store.open("file-whole") as stream:
        assert stream.read() == whole
    assert composed.md5 == hashlib.md5(whole).hexdigest()
    assert (composed.stored.size, composed.stored.sha256) == (len(whole), hashlib.sha256(whole).hexdigest())
    assert store.exists("part_0")  # the sources stay; their owner deletes them


def test_a_missing_source_leaves_no_composed_blob(store: BlobStore) -> None:
    store.put("part_0", [b"x" * 100])

    with pytest.raises(BlobNotFound):
        compose(store, "file-whole", ["part_0", "part_gone"])

    assert not store.exists("file-whole")


def test_a_composition_past_max_bytes_leaves_no_blob(store: BlobStore) -> None:
    store.put("part_0", [b"x" * 100])
    store.put("part_1", [b"y" * 100])

    with pytest.raises(PayloadTooLarge):
        compose(store, "file-whole", ["part_0", "part_1"], max_bytes=150)

    assert not store.exists("file-whole")
