"""The directory blob store: one file per blob under `root/<last two characters>/<key>`.

A write goes to a hidden temporary file beside its target and is renamed into place once whole,
so a reader never sees half a blob; a crash mid-write leaves only the temporary file, which
`remove_partial` clears. Every process that serves or reads bodies must see the same directory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from service.blobs.store import BlobInfo, BlobNotFound, Meter, StoredBlob, check_key, is_key

PARTIAL_PREFIX = ".upload-"


class DirectoryBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)[-2:] / key

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        meter = Meter(max_bytes)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX)
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    tmp.write(meter.feed(chunk))
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return meter.stored(key)

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as error:
            raise BlobNotFound(key) from error

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _entries(self) -> Iterator[os.DirEntry[str]]:
        if not self.root.is_dir():
            return
        for shard in os.scandir(self.root):
            if shard.is_dir(follow_symlinks=False):
                yield from (entry for entry in os.scandir(shard.path) if entry.is_file(follow_symlinks=False))

    def list_blobs(self) -> Iterator[BlobInfo]:
        for entry in self._entries():
            if is_key(entry.name):
                yield BlobInfo(entry.name, _mtime(entry))

    def remove_partial(self, *, older_than: datetime) -> int:
        removed = 0
        for entry in self._entries():
            if entry.name.startswith(PARTIAL_PREFIX) and _mtime(entry) < older_than:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed

    def close(self) -> None:
        return None


def _mtime(entry: os.DirEntry[str]) -> datetime:
    return datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, tz=UTC)
