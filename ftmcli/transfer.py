"""Sending a file to the service with a byte count as it goes: one `files.create` for a small
file, OpenAI's multipart `/v1/uploads` (parts, then a completion checked by MD5) above a size.

The file is read as httpx sends it, through `Region`, which reports the bytes read; neither path
reads the whole file into memory (a multipart part is one `part_size` region of the file)."""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

import openai
from openai.types import FileObject

from ftmcli.errors import CliError

MIB = 1024 * 1024
PART_SIZE = 64 * MIB  # the service's (and OpenAI's) largest part
MIME_TYPE = "application/jsonl"
Advance = Callable[[int], None]
OnRead = Callable[[memoryview], None]


class Region(io.RawIOBase):
    """`length` bytes of `handle` from `start`, as a seekable stream that calls `on_read` with the
    bytes read beyond the furthest point read so far, in order (a retry that rereads from the
    start sees each byte once)."""

    def __init__(self, handle: io.BufferedReader, start: int, length: int, on_read: OnRead) -> None:
        super().__init__()
        self._handle, self._start, self._length, self._on_read = handle, start, length, on_read
        self._position = 0
        self._furthest = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = min(max(0, base + offset), self._length)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._length - self._position)
        if wanted <= 0:
            return 0
        self._handle.seek(self._start + self._position)
        read = self._handle.readinto(view[:wanted])
        end = self._position + read
        if end > self._furthest:
            self._on_read(view[self._furthest - self._position : read])
            self._furthest = end
        self._position = end
        return read


def upload_whole(sdk: openai.OpenAI, path: Path, advance: Advance) -> FileObject:
    with path.open("rb") as handle:
        region = Region(handle, 0, path.stat().st_size, lambda new: advance(len(new)))
        return sdk.files.create(file=(path.name, cast(BinaryIO, region), MIME_TYPE), purpose="fine-tune")


def upload_in_parts(
    sdk: openai.OpenAI, path: Path, advance: Advance, *, part_size: int = PART_SIZE
) -> FileObject:
    """Create an upload, send the file in parts of `part_size` and complete it with the file's MD5
    (computed as the parts are read); an upload that fails on the way is cancelled."""
    size = path.stat().st_size
    upload = sdk.uploads.create(bytes=size, filename=path.name, mime_type=MIME_TYPE, purpose="fine-tune")
    md5 = hashlib.md5(usedforsecurity=False)

    def on_read(new: memoryview) -> None:
        md5.update(new)
        advance(len(new))

    try:
        part_ids: list[str] = []
        with path.open("rb") as handle:
            for start in range(0, size, part_size):
                region = Region(handle, start, min(part_size, size - start), on_read)
                part = sdk.uploads.parts.create(
                    upload.id, data=(path.name, cast(BinaryIO, region), MIME_TYPE)
                )
                part_ids.append(part.id)
        done = sdk.uploads.complete(upload.id, part_ids=part_ids, md5=md5.hexdigest())
    except BaseException:
        with contextlib.suppress(openai.APIError):
            sdk.uploads.cancel(upload.id)
        raise
    if done.file is None:
        raise CliError(f"upload {upload.id} completed without a file")
    return done.file
