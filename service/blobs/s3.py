"""The S3 blob store: one object per blob under `prefix + key` in a bucket of any S3-compatible
service (AWS S3, MinIO, Ceph, R2, ...), through boto3.

`put` streams: a body up to one part is a single PUT; a larger one is a multipart upload sent part
by part as it arrives, so at most one part (`part_size`) is in memory, and an upload that fails
or goes over the limit is aborted, leaving no object. `open` returns a seekable stream that reads
the object with ranged GETs, so an HTTP client can measure it and send it without loading it.
The bucket (under the prefix) must be ftm's own: the orphan sweep removes what no file references.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from botocore.exceptions import ClientError

from service.blobs.store import CHUNK, BlobInfo, BlobNotFound, Meter, StoredBlob, check_key, is_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part but the last
_MISSING = {"NoSuchKey", "404", "NotFound"}


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING


class S3BlobStore:
    def __init__(self, client: S3Client, bucket: str, *, prefix: str = "", part_size: int = 8 * 1024 * 1024):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        name = self._name(key)
        meter = Meter(max_bytes)
        pending = bytearray()
        upload: _MultipartUpload | None = None
        try:
            for chunk in chunks:
                pending += meter.feed(chunk)
                while len(pending) >= self.part_size:
                    upload = upload or _MultipartUpload.begin(self.client, self.bucket, name)
                    upload.send(bytes(pending[: self.part_size]))
                    del pending[: self.part_size]
            if upload is None:
                self.client.put_object(Bucket=self.bucket, Key=name, Body=bytes(pending))
            else:
                if pending:
                    upload.send(bytes(pending))
                upload.complete()
        except BaseException:
            if upload is not None:
                upload.abort()
            raise
        return meter.stored(key)

    def open(self, key: str) -> BinaryIO:
        name = self._name(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _missing(error):
                raise BlobNotFound(key) from error
            raise
        reader = _ObjectReader(self.client, self.bucket, name, response["Body"], response["ContentLength"])
        return cast(BinaryIO, io.BufferedReader(reader, CHUNK))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as error:
            if _missing(error):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def list_blobs(self) -> Iterator[BlobInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"].removeprefix(self.prefix)
                if is_key(key):  # deeper or odd names are not ours
                    yield BlobInfo(key, item["LastModified"])

    def remove_partial(self, *, older_than: datetime) -> int:
        removed = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < older_than:
                    _MultipartUpload(self.client, self.bucket, upload["Key"], upload["UploadId"]).abort()
                    removed += 1
        return removed

    def close(self) -> None:
        self.client.close()


class _MultipartUpload:
    def __init__(self, client: S3Client, bucket: str, name: str, upload_id: str) -> None:
        self.client, self.bucket, self.name, self.upload_id = client, bucket, name, upload_id
        self.parts: list[CompletedPartTypeDef] = []

    @classmethod
    def begin(cls, client: S3Client, bucket: str, name: str) -> _MultipartUpload:
        started = client.create_multipart_upload(Bucket=bucket, Key=name)
        return cls(client, bucket, name, started["UploadId"])

    def send(self, body: bytes) -> None:
        number = len(self.parts) + 1
        sent = self.client.upload_part(
            Bucket=self.bucket, Key=self.name, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def complete(self) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.name, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )

    def abort(self) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.name, UploadId=self.upload_id)
        except ClientError as error:
            # The orphan sweep's remove_partial aborts it later.
            log.warning("s3 multipart upload of %s not aborted: %s", self.name, error)


class _ObjectReader(io.RawIOBase):
    """An object as a seekable raw stream: reads go on from the open body; a read anywhere else
    (after a seek) reopens it there with a ranged GET. Seeking alone costs nothing, so measuring
    the length (seek to the end and back) keeps the body."""

    def __init__(self, client: S3Client, bucket: str, name: str, body: Any, size: int) -> None:
        super().__init__()
        self._client, self._bucket, self._name = client, bucket, name
        self._body: Any = body
        self._body_at = 0  # where the open body's next byte is
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        if self._body is not None and self._body_at != self._position:
            self._drop_body()
        if self._body is None:
            ranged = self._client.get_object(
                Bucket=self._bucket, Key=self._name, Range=f"bytes={self._position}-"
            )
            self._body, self._body_at = ranged["Body"], self._position
        view = memoryview(buffer).cast("B")
        data = self._body.read(len(view))
        if not data:
            raise OSError(f"s3 object {self._name} ended at {self._position} of {self._size} bytes")
        view[: len(data)] = data
        self._position += len(data)
        self._body_at = self._position
        return len(data)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()
