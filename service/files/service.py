"""Files: store uploads, validate them, serve them back; every query scoped by tenant.

A body and its row stay in step: the body is written under the file's id before the row is added,
and it is reachable only through the row, so it becomes visible when the row commits; a rollback
or a crash before the commit leaves an unreferenced blob that the orphan sweep removes
(`service.files.orphans`). A deleted file's body goes only after its deletion commits
(`service.blobs.transactions`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import cast, get_args

from sqlalchemy.orm import Session, sessionmaker

from service.auth.models import TenantRow
from service.blobs.store import BlobNotFound, BlobStore, StoredBlob
from service.blobs.transactions import delete_after_commit
from service.clock import utcnow
from service.db import session_scope
from service.errors import InvalidRequest, NotFound
from service.files.models import FileRow, FileStatus
from service.files.names import clean_filename
from service.files.personal import PersonalDataScanner
from service.files.redaction import redacted_filename, redacted_lines
from service.files.report import PersonalDataPolicy
from service.files.validation import validate_jsonl
from service.ids import new_id
from service.outbox import service as outbox
from service.tasks import TaskName
from service.tenancy import Order, get_owned, keyset_page, owned

log = logging.getLogger(__name__)

UPLOAD_PURPOSES = {"fine-tune"}
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
    personal_data: str | None = None,
    default_personal_data: PersonalDataPolicy = "warn",
) -> FileRow:
    """Store the body, record the file as `uploaded` and queue its validation (one transaction).

    The client's file name is kept for display only, cleaned by `clean_filename`. The file's
    personal-data policy is `personal_data`, else its tenant's default, else
    `default_personal_data` (the service's)."""
    policy = personal_data_policy(session, tenant_id, personal_data, default_personal_data)
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(
            f"Invalid purpose '{purpose}'; supported: {', '.join(sorted(UPLOAD_PURPOSES))}.", param="purpose"
        )
    filename = clean_filename(filename)
    if not filename.endswith(".jsonl"):
        raise InvalidRequest("Fine-tuning files must be JSONL and named *.jsonl.", param="file")
    file_id = new_id("file-")
    stored = blobs.put(file_id, chunks, max_bytes=max_bytes)
    if stored.size == 0:
        blobs.delete(file_id)  # no row references it yet
        raise InvalidRequest("The file is empty.", param="file")
    row = _record(
        session, stored, tenant_id=tenant_id, filename=filename, purpose=purpose, status=FileStatus.UPLOADED
    )
    row.personal_data_policy = policy
    outbox.enqueue(session, TaskName.FILES_VALIDATE, file_id=file_id)
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
    copy: StoredBlob | None = None
    try:
        report = validate_jsonl(_lines(blobs, key), personal_data=policy, scanner=scanner)
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
        row.status_details = None if report.ok else report.summary()
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
