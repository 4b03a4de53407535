"""Files: store uploads, validate them, serve them back; every query scoped by tenant.

A body and its row stay in step: the body is written under the file's id before the row is added,
and it is reachable only through the row, so it becomes visible when the row commits; a rollback
or a crash before the commit leaves an unreferenced blob that the orphan sweep removes
(`service.files.orphans`). A deleted file's body goes only after its deletion commits
(`service.blobs.transactions`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast, get_args

from sqlalchemy.orm import Session, sessionmaker

from service.auth.models import TenantRow
from service.blobs.store import BlobNotFound, BlobStore, StoredBlob
from service.blobs.transactions import delete_after_commit
from service.clock import utcnow
from service.db import session_scope
from service.errors import InvalidRequest, NotFound
from service.files.counting import OFFLOAD_MIN_BYTES
from service.files.encodings import UP_FRONT_ENCODINGS
from service.files.models import FileRow, FileStatus
from service.files.names import clean_filename
from service.files.personal import PersonalDataScanner
from service.files.redaction import redacted_filename, redacted_lines
from service.files.report import PersonalDataPolicy
from service.files.sources import SOURCE_EXTENSIONS, source_format_of
from service.files.validation import validate_jsonl
from service.ids import new_id
from service.outbox import service as outbox
from service.tasks import TaskName
from service.tenancy import Order, get_owned, keyset_page, owned
from service.webhooks.service import emit_event

log = logging.getLogger(__name__)

FINE_TUNE_PURPOSE = "fine-tune"
# Source data (CSV, TSV, a JSON array) for `POST /v1/files/{id}/preparations`; not for jobs.
SOURCE_PURPOSE = "user_data"
UPLOAD_PURPOSES = {FINE_TUNE_PURPOSE, SOURCE_PURPOSE}
RESULTS_PURPOSE = "fine-tune-results"
PERSONAL_DATA_POLICIES: tuple[str, ...] = get_args(PersonalDataPolicy)


def file_not_found(file_id: str) -> NotFound:
    return NotFound(f"No such File object: {file_id}", param="file_id", code="file_not_found")


def get_file(session: Session, *, tenant_id: str, file_id: str) -> FileRow:
    return get_owned(session, FileRow, file_id, tenant_id=tenant_id, not_found=file_not_found)


def create_file(
    session: Session,
    blobs: BlobStore,
    *,
    tenant_id: str,
    filename: str | None,
    purpose: str,
    chunks: Iterable[bytes],
    max_bytes: int,
    source_file_id: str | None = None,
    preparation_id: str | None = None,
    policy: PersonalDataPolicy = "warn",
) -> FileRow:
    """Store the body, record the file as `uploaded` and queue its validation (one transaction).
    Source data (`user_data`) is not validated as JSONL: it is `processed` at once, and checked
    row by row when it is prepared.

    The client's file name is kept for display only, cleaned by `clean_filename`."""
    upload = store_upload(blobs, filename=filename, purpose=purpose, chunks=chunks, max_bytes=max_bytes)
    return record_upload(
        session,
        upload,
        tenant_id=tenant_id,
        source_file_id=source_file_id,
        preparation_id=preparation_id,
        policy=policy,
    )


@dataclass(frozen=True)
class Upload:
    """An uploaded body, stored under a new file id, that no row references yet."""

    file_id: str
    filename: str
    purpose: str
    stored: StoredBlob


def store_upload(
    blobs: BlobStore, *, filename: str | None, purpose: str, chunks: Iterable[bytes], max_bytes: int
) -> Upload:
    """Check the purpose and name, then store the body as it streams in (a 400 or 413 stores
    nothing)."""
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(
            f"Invalid purpose '{purpose}'; supported: {', '.join(sorted(UPLOAD_PURPOSES))}.", param="purpose"
        )
    cleaned = clean_filename(filename)
    if purpose == SOURCE_PURPOSE and source_format_of(cleaned) is None:
        raise InvalidRequest(
            f"Source data must be named *{', *'.join(SOURCE_EXTENSIONS)}; prepare it into fine-tuning files "
            "with POST /v1/files/{file_id}/preparations.",
            param="file",
        )
    if purpose == FINE_TUNE_PURPOSE and not cleaned.endswith(".jsonl"):
        raise InvalidRequest("Fine-tuning files must be JSONL and named *.jsonl.", param="file")
    file_id = new_id("file-")
    stored = blobs.put(file_id, chunks, max_bytes=max_bytes)
    if stored.size == 0:
        blobs.delete(file_id)  # no row references it yet
        raise InvalidRequest("The file is empty.", param="file")
    return Upload(file_id, cleaned, purpose, stored)


def record_upload(
    session: Session,
    upload: Upload,
    *,
    tenant_id: str,
    source_file_id: str | None = None,
    preparation_id: str | None = None,
    policy: PersonalDataPolicy = "warn",
) -> FileRow:
    """Record a stored upload: source data `processed` at once, a fine-tuning file `uploaded` with
    its validation queued under personal-data `policy` (one transaction)."""
    if upload.purpose == SOURCE_PURPOSE:
        return _record(
            session,
            upload.stored,
            tenant_id=tenant_id,
            filename=upload.filename,
            purpose=upload.purpose,
            status=FileStatus.PROCESSED,
        )
    row = _record(
        session,
        upload.stored,
        tenant_id=tenant_id,
        filename=upload.filename,
        purpose=upload.purpose,
        status=FileStatus.UPLOADED,
    )
    row.source_file_id = source_file_id
    row.preparation_id = preparation_id
    row.personal_data_policy = policy
    outbox.enqueue(session, TaskName.FILES_VALIDATE, file_id=upload.file_id)
    return row


def record_assembled_file(
    session: Session,
    stored: StoredBlob,
    *,
    tenant_id: str,
    filename: str,
    purpose: str,
    policy: PersonalDataPolicy,
    expires_at: datetime | None = None,
) -> FileRow:
    """A file whose body was assembled elsewhere (an upload's parts, `service.uploads`): recorded as
    `uploaded` and queued for validation in the caller's transaction, like `create_file`'s."""
    row = _record(
        session, stored, tenant_id=tenant_id, filename=filename, purpose=purpose, status=FileStatus.UPLOADED
    )
    row.expires_at = expires_at
    row.personal_data_policy = policy
    outbox.enqueue(session, TaskName.FILES_VALIDATE, file_id=row.id)
    return row


def personal_data_policy(
    session: Session, tenant_id: str, requested: str | None, default: PersonalDataPolicy
) -> PersonalDataPolicy:
    """The policy an upload gets: the one it asks for, its tenant's default, or the service's."""
    if requested is not None:
        if requested not in PERSONAL_DATA_POLICIES:
            raise InvalidRequest(
                f"Invalid personal_data '{requested}'; expected one of {', '.join(PERSONAL_DATA_POLICIES)}.",
                param="personal_data",
            )
        return cast(PersonalDataPolicy, requested)
    tenant = session.get(TenantRow, tenant_id)
    if tenant is not None and tenant.personal_data_policy in PERSONAL_DATA_POLICIES:
        return cast(PersonalDataPolicy, tenant.personal_data_policy)
    return default


def store_result_file(
    session: Session, blobs: BlobStore, *, tenant_id: str, filename: str, content: bytes
) -> FileRow:
    """A file the service made (a job's results): processed from the start."""
    stored = blobs.put(new_id("file-"), [content])
    return _record(
        session,
        stored,
        tenant_id=tenant_id,
        filename=filename,
        purpose=RESULTS_PURPOSE,
        status=FileStatus.PROCESSED,
    )


def _record(
    session: Session, stored: StoredBlob, *, tenant_id: str, filename: str, purpose: str, status: FileStatus
) -> FileRow:
    row = FileRow(
        id=stored.key,
        tenant_id=tenant_id,
        filename=filename,
        purpose=purpose,
        bytes=stored.size,
        sha256=stored.sha256,
        blob_key=stored.key,
        status=status,
        created_at=utcnow(),
    )
    session.add(row)
    return row


def list_files(
    session: Session, *, tenant_id: str, purpose: str | None, limit: int, order: Order, after: str | None
) -> tuple[list[FileRow], bool]:
    query = owned(FileRow, tenant_id)
    if purpose:
        query = query.where(FileRow.purpose == purpose)
    return keyset_page(
        session,
        query,
        keys=(FileRow.created_at, FileRow.id),
        identity=FileRow.id,
        after=after,
        limit=limit,
        order=order,
    )


def delete_file(session: Session, blobs: BlobStore, *, tenant_id: str, file_id: str) -> None:
    """Delete the row now and the body once that is committed (a rollback keeps both)."""
    row = get_file(session, tenant_id=tenant_id, file_id=file_id)
    session.delete(row)
    session.flush()
    delete_after_commit(session, blobs, row.blob_key)


def validate_file(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    file_id: str,
    *,
    scanner: PersonalDataScanner | None = None,
) -> FileStatus | None:
    """Validate an uploaded file and set its status; returns the file's status (None if it is gone).

    The body is streamed with no transaction open, since a large file takes minutes; the outcome
    is written in a second, short one. Idempotent: a decided file is left as it is, and of two
    validations racing, the first to write wins. Under `redact`, a valid file with findings gets
    a redacted copy (a second pass writes its body before the outcome's transaction; that copy is
    then validated like any upload)."""
    scanner = scanner or PersonalDataScanner()
    with session_scope(sessions) as session:
        row = session.get(FileRow, file_id)
        if row is None or row.status != FileStatus.UPLOADED:
            return FileStatus(row.status) if row is not None else None
        key = row.blob_key
        policy = cast(PersonalDataPolicy | None, row.personal_data_policy)
        # A large file's tokens are counted in a second process, on a second core, beside the checks.
        offload = row.bytes >= OFFLOAD_MIN_BYTES and (os.cpu_count() or 1) > 1
    copy: StoredBlob | None = None
    try:
        report = validate_jsonl(
            _lines(blobs, key),
            personal_data=policy,
            scanner=scanner,
            encodings=UP_FRONT_ENCODINGS,
            offload=offload,
        )
        if policy == "redact" and report.ok and report.personal_data and report.personal_data.findings:
            copy = blobs.put(new_id("file-"), redacted_lines(_lines(blobs, key), scanner))
    except BlobNotFound:
        with session_scope(sessions) as session:
            if session.get(FileRow, file_id) is None:
                return None  # deleted while it was being read
        raise
    with session_scope(sessions) as session:
        row = session.get(FileRow, file_id)
        if row is None or row.status != FileStatus.UPLOADED:
            if copy is not None:
                blobs.delete(copy.key)  # no row references it
            return FileStatus(row.status) if row is not None else None
        if copy is not None and report.personal_data is not None:
            report.personal_data.redacted_file = _record_redacted_copy(session, row, copy).id
        row.report = report.model_dump(mode="json")
        row.status = FileStatus.PROCESSED if report.ok else FileStatus.ERROR
        if report.ok and report.pending_encodings:  # the other encodings' pass, after this commit
            outbox.enqueue(session, TaskName.FILES_COUNT_TOKENS, file_id=row.id)
        row.status_details = None if report.ok else report.summary()
        emit_event(
            session,
            tenant_id=row.tenant_id,
            type="file.processed" if report.ok else "file.failed",
            data_id=row.id,
        )
        log.info("file %s validated: %s", file_id, row.status)
        return FileStatus(row.status)


def _record_redacted_copy(session: Session, original: FileRow, stored: StoredBlob) -> FileRow:
    copy = _record(
        session,
        stored,
        tenant_id=original.tenant_id,
        filename=redacted_filename(original.filename),
        purpose=original.purpose,
        status=FileStatus.UPLOADED,
    )
    copy.personal_data_policy = "warn"  # what is left after redaction is reported, not blocked
    copy.redacted_from = original.id
    original.redacted_file_id = copy.id
    outbox.enqueue(session, TaskName.FILES_VALIDATE, file_id=copy.id)
    return copy


def _lines(blobs: BlobStore, key: str) -> Iterable[bytes]:
    with blobs.open(key) as stream:
        yield from stream
