"""Preparations of a tenant's source files (`POST /v1/files/{file_id}/preparations`,
`GET /v1/preparations/{id}`): a CSV, TSV or JSON array becomes ordinary `fine-tune` files.

A source of up to `FTM_PREPARATION_INLINE_BYTES` is prepared in the request: it is one streamed
pass to a scratch file and one to the outputs, with no provider call, a few seconds at most (see
README, "Preparing data"), and a source with problems is a 400 that creates nothing. A larger one
is `queued` in the same transaction as its record (an outbox row) and prepared by a worker
(`files.prepare`), streamed with no transaction open and decided in a second, short one, like a
file's validation; its problems end it `failed` with the same error. Memory stays bounded
whatever the size. The produced files are validated by a worker like any upload and carry their
source's and their preparation's ids."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from sqlalchemy.orm import Session, sessionmaker

from service.blobs.store import BlobNotFound, BlobStore
from service.clock import utcnow
from service.db import session_scope
from service.errors import InvalidRequest, NotFound, ServiceError
from service.files import service as files
from service.files.models import FileRow, PreparationRow, PreparationStatus
from service.files.preparation import (
    PreparationCreate,
    PreparationFailed,
    PreparationSummary,
    check_options,
    prepare,
)
from service.files.report import PersonalDataPolicy
from service.files.sources import SourceFormat, source_format_of
from service.ids import new_id
from service.outbox import service as outbox
from service.tasks import TaskName
from service.tenancy import get_owned

CHUNK = 1024 * 1024


def preparation_not_found(preparation_id: str) -> NotFound:
    return NotFound(
        f"No such preparation: {preparation_id}", param="preparation_id", code="preparation_not_found"
    )


def get_preparation(session: Session, *, tenant_id: str, preparation_id: str) -> PreparationRow:
    return get_owned(
        session, PreparationRow, preparation_id, tenant_id=tenant_id, not_found=preparation_not_found
    )


@dataclass(frozen=True)
class _Converted:
    summary: PreparationSummary
    training: IO[bytes]
    validation: IO[bytes]


@contextmanager
def _converted(
    blobs: BlobStore, key: str, kind: SourceFormat, options: PreparationCreate
) -> Iterator[_Converted]:
    """The outputs, in scratch files that go when the block ends; raises `InvalidRequest` naming
    the source's first problem (or the option that does not fit it)."""
    with tempfile.TemporaryFile() as training, tempfile.TemporaryFile() as validation:
        try:
            summary = prepare(
                lambda: blobs.open(key), kind, options, training=training, validation=validation
            )
        except PreparationFailed as failed:
            raise InvalidRequest(
                f"The source file cannot be prepared: {failed.summary()}",
                param="file_id",
                code="invalid_source",
            ) from failed
        yield _Converted(summary, training, validation)


def _chunks(scratch: IO[bytes]) -> Iterator[bytes]:
    scratch.seek(0)
    while chunk := scratch.read(CHUNK):
        yield chunk


def _stem(filename: str) -> str:
    stem, dot, _ = filename.rpartition(".")
    return stem if dot and stem else filename


def _store(
    session: Session,
    blobs: BlobStore,
    row: PreparationRow,
    source_filename: str,
    converted: _Converted,
    *,
    max_upload_bytes: int,
    default_policy: PersonalDataPolicy,
) -> None:
    """Create the produced files and mark the preparation succeeded (the caller's transaction).

    The files are validated under the personal-data policy an upload by the same tenant would get
    now: the preparation's own, else the tenant's, else the service's default."""
    requested = PreparationCreate.model_validate(row.options).personal_data
    policy = files.personal_data_policy(session, row.tenant_id, requested, default_policy)
    made: dict[str, str] = {}
    for name, scratch, count in (
        ("train", converted.training, converted.summary.training_examples),
        ("validation", converted.validation, converted.summary.validation_examples),
    ):
        if count:
            made[name] = files.create_file(
                session,
                blobs,
                tenant_id=row.tenant_id,
                filename=f"{_stem(source_filename)}_{name}.jsonl",
                purpose=files.FINE_TUNE_PURPOSE,
                chunks=_chunks(scratch),
                max_bytes=max_upload_bytes,
                source_file_id=row.source_file_id,
                preparation_id=row.id,
                policy=policy,
            ).id
    row.training_file_id = made["train"]
    row.validation_file_id = made.get("validation")
    row.summary = converted.summary.model_dump(mode="json")
    row.status = PreparationStatus.SUCCEEDED
    row.finished_at = utcnow()


def _source(session: Session, tenant_id: str, file_id: str) -> tuple[FileRow, SourceFormat]:
    source = files.get_file(session, tenant_id=tenant_id, file_id=file_id)
    kind = source_format_of(source.filename)
    if source.purpose != files.SOURCE_PURPOSE or kind is None:
        raise InvalidRequest(
            f"File '{file_id}' is not source data: upload a .csv, .tsv or .json file with purpose "
            f"'{files.SOURCE_PURPOSE}' to prepare it.",
            param="file_id",
        )
    return source, kind


def create_preparation(
    session: Session,
    blobs: BlobStore,
    *,
    tenant_id: str,
    file_id: str,
    options: PreparationCreate,
    inline_bytes: int,
    max_upload_bytes: int,
    default_policy: PersonalDataPolicy = "warn",
) -> PreparationRow:
    """Prepare a small source now (a problem is a 400 and nothing is kept), or queue a large one."""
    check_options(options)
    source, kind = _source(session, tenant_id, file_id)
    row = PreparationRow(
        id=new_id("prep-"),
        tenant_id=tenant_id,
        source_file_id=source.id,
        status=PreparationStatus.QUEUED,
        options=options.model_dump(mode="json"),
        created_at=utcnow(),
    )
    session.add(row)
    if source.bytes > inline_bytes:
        session.flush()
        outbox.enqueue(session, TaskName.FILES_PREPARE, preparation_id=row.id)
        return row
    with _converted(blobs, source.blob_key, kind, options) as converted:
        _store(
            session,
            blobs,
            row,
            source.filename,
            converted,
            max_upload_bytes=max_upload_bytes,
            default_policy=default_policy,
        )
    return row


def run_preparation(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    preparation_id: str,
    *,
    max_upload_bytes: int,
    default_policy: PersonalDataPolicy = "warn",
) -> PreparationStatus | None:
    """A worker's preparation of a queued source; returns its status (None if it is gone).
    Idempotent: a decided preparation is left as it is; of two runs racing, the first to write wins."""
    with session_scope(sessions) as session:
        row = session.get(PreparationRow, preparation_id)
        if row is None or row.status != PreparationStatus.QUEUED:
            return PreparationStatus(row.status) if row is not None else None
        source_file_id = row.source_file_id
        source = session.get(FileRow, source_file_id)
        found = (source.blob_key, source.filename) if source is not None else None
        options = PreparationCreate.model_validate(row.options)
    failure: ServiceError
    try:
        if found is None:
            raise BlobNotFound(source_file_id)
        key, filename = found
        kind = source_format_of(filename)
        assert kind is not None  # checked when the preparation was created
        with _converted(blobs, key, kind, options) as converted, session_scope(sessions) as session:
            row = session.get_one(PreparationRow, preparation_id)
            if row.status != PreparationStatus.QUEUED:
                return PreparationStatus(row.status)
            _store(
                session,
                blobs,
                row,
                filename,
                converted,
                max_upload_bytes=max_upload_bytes,
                default_policy=default_policy,
            )
            return PreparationStatus.SUCCEEDED
    except BlobNotFound:
        failure = InvalidRequest("The source file was deleted before it was prepared.", param="file_id")
    except ServiceError as error:
        failure = error
    with session_scope(sessions) as session:
        row = session.get_one(PreparationRow, preparation_id)
        if row.status == PreparationStatus.QUEUED:
            row.status = PreparationStatus.FAILED
            row.error = {"message": failure.message, "param": failure.param, "code": failure.code}
            row.finished_at = utcnow()
        return PreparationStatus(row.status)
