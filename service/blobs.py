"""The blob store: file bodies in a directory (the default; an S3 store can implement the same
four methods). Writes are atomic (a temporary file renamed into place) and hashed as they stream."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from service.errors import PayloadTooLarge

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key[-2:] / key

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        """Store `chunks` under `key`; over `max_bytes` nothing is kept and PayloadTooLarge is raised."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(
                            f"The file is larger than the limit of {max_bytes} bytes.", param="file"
                        )
                    digest.update(chunk)
                    tmp.write(chunk)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return StoredBlob(key, size, digest.hexdigest())

    def read_chunks(self, key: str) -> Iterator[bytes]:
        with self._path(key).open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def path(self, key: str) -> Path:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
