"""What a blob store is: file bodies by key, handed out as streams, never as filesystem paths.

Two stores implement it: `directory` (a directory, the default) and `s3` (an S3-compatible
bucket, so that the API and the workers can run on different machines); `backends` picks one from
the settings. `compose` concatenates blobs into a new one by streaming (an upload's parts into its
file). A store knows nothing of rows: which blob a row references, when a write becomes
visible and when a body may go is the caller's business (`service.blobs.transactions` defers
deletions to the commit; `service.files.orphans` sweeps what no row references).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from service.errors import PayloadTooLarge

CHUNK = 1024 * 1024
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}")


class BlobNotFound(LookupError):
    """No blob is stored under this key."""


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob as a listing sees it: its key and when it was last written (aware, UTC)."""

    key: str
    modified_at: datetime


class BlobStore(Protocol):
    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        """Store `chunks` under `key` as they stream in (never all in memory) and return the size
        and SHA-256 written. A blob is whole or absent: over `max_bytes` (PayloadTooLarge) or on
        any error nothing is kept under `key`."""
        ...

    def open(self, key: str) -> BinaryIO:
        """The blob's bytes as a readable binary stream (close it; `with` does). BlobNotFound when
        there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing one is not an error."""
        ...

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob, in no particular order (for the orphan sweep); names that are not
        keys (a temporary file, an object someone else put there) are left out."""
        ...

    def remove_partial(self, *, older_than: datetime) -> int:
        """Remove writes that never finished (a crash mid-`put`) begun before `older_than`; how many."""
        ...

    def close(self) -> None: ...


def is_key(name: str) -> bool:
    """A key is a plain name (a file id): never a path, never hidden."""
    return _KEY.fullmatch(name) is not None


def check_key(key: str) -> str:
    if not is_key(key):
        raise ValueError(f"bad blob key {key!r}")
    return key


class Meter:
    """Counts and hashes a body as it streams through; raises PayloadTooLarge past `max_bytes`."""

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._digest = hashlib.sha256()

    def feed(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise PayloadTooLarge(
                f"The file is larger than the limit of {self.max_bytes} bytes.", param="file"
            )
        self._digest.update(chunk)
        return chunk

    def stored(self, key: str) -> StoredBlob:
        return StoredBlob(key, self.size, self._digest.hexdigest())


def iter_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Read `stream` in chunks and close it at the end (or when the iterator is closed)."""
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


@dataclass(frozen=True)
class ComposedBlob:
    """A blob made of others, with the MD5 of the whole (what a client checks an upload by)."""

    stored: StoredBlob
    md5: str


def compose(
    blobs: BlobStore, key: str, sources: Iterable[str], *, max_bytes: int | None = None
) -> ComposedBlob:
    """Store the concatenation of the blobs `sources` under `key`, streaming: each source is read
    in chunks and written on as it is read (the directory store appends to one file, the S3 store
    sends a multipart upload part by part), so no source is ever whole in memory. The MD5 is
    computed on the way; `key` is whole or absent, as with `put`."""
    md5 = hashlib.md5(usedforsecurity=False)

    def chunks() -> Iterator[bytes]:
        for source in sources:
            for chunk in iter_chunks(blobs.open(source)):
                md5.update(chunk)
                yield chunk

    stored = blobs.put(key, chunks(), max_bytes=max_bytes)
    return ComposedBlob(stored, md5.hexdigest())
