"""Uploads: a file sent in parts (OpenAI's `/v1/uploads`), assembled into an ordinary file.

An upload is `pending` for an hour after its creation (`FTM_UPLOADS_EXPIRE_AFTER_S`); each part's
body streams into the blob store under the part's id as it arrives, and its row is added once the
body is whole. Completion streams the parts, in the order given, into the file's blob (checking
the total and the MD5 on the way), then records the file (queued for validation like any upload)
and ends the upload in one transaction; the parts' blobs go after that commits. Cancelling and
expiry (`sweep_expired`, from beat) end the upload the same way, without a file.

Bodies are read and written with no transaction open (a part is up to 64 MiB, a file up to 8 GB);
each state change re-reads the upload in a short transaction of its own and applies only if the
upload is still pending, so of two racing changes the first wins and the second is refused.
Every error names its parameter and changes nothing; another tenant's upload is a 404.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.blobs.store import BlobStore, compose
from service.blobs.transactions import delete_after_commit
from service.config import Settings
from service.db import session_scope
from service.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge
from service.files import service as files
from service.files.models import FileRow
from service.files.names import clean_filename
from service.files.report import PersonalDataPolicy
from service.files.schemas import File
from service.ids import new_id
from service.tenancy import get_owned
from service.uploads.models import UploadPartRow, UploadRow, UploadStatus
from service.uploads.schemas import Upload, UploadCreate, UploadPart

log = logging.getLogger(__name__)

# What a JSONL file may be declared as: JSON Lines' own types and the generic ones clients send.
JSONL_MIME_TYPES = frozenset(
    {
        "application/jsonl",
        "application/x-jsonl",
        "application/jsonlines",
        "application/x-jsonlines",
        "application/x-ndjson",
        "application/json",
        "application/octet-stream",
        "text/jsonl",
        "text/plain",
    }
)
SWEEP_BATCH = 100


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_part_bytes: int
    expire_after: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_bytes=settings.uploads_max_bytes,
            max_part_bytes=settings.uploads_max_part_bytes,
            expire_after=timedelta(seconds=settings.uploads_expire_after_s),
        )


def upload_not_found(upload_id: str) -> NotFound:
    return NotFound(f"No such Upload object: {upload_id}", param="upload_id", code="upload_not_found")


def _state_error(row: UploadRow, action: str, *, now: datetime) -> Conflict | None:
    """Why `action` is refused on `row` (None when the upload is pending and not yet expired)."""
    status = row.status
    if status == UploadStatus.PENDING and now >= row.expires_at:
        status = UploadStatus.EXPIRED
    if status == UploadStatus.PENDING:
        return None
    return Conflict(
        f"Cannot {action} Upload {row.id}: it is already {status}.",
        param="upload_id",
        code=f"upload_{status}",
    )


def _get_pending(
    session: Session, *, tenant_id: str, upload_id: str, action: str, now: datetime
) -> UploadRow:
    row = get_owned(session, UploadRow, upload_id, tenant_id=tenant_id, not_found=upload_not_found)
    if (error := _state_error(row, action, now=now)) is not None:
        raise error
    return row


def create_upload(
    session: Session, req: UploadCreate, *, tenant_id: str, limits: Limits, now: datetime
) -> Upload:
    if req.purpose not in files.UPLOAD_PURPOSES:
        supported = ", ".join(sorted(files.UPLOAD_PURPOSES))
        raise InvalidRequest(f"Invalid purpose '{req.purpose}'; supported: {supported}.", param="purpose")
    filename = clean_filename(req.filename)
    if not filename.endswith(".jsonl"):
        raise InvalidRequest("Fine-tuning files must be JSONL and named *.jsonl.", param="filename")
    mime_type = req.mime_type.partition(";")[0].strip().lower()
    if mime_type not in JSONL_MIME_TYPES:
        raise InvalidRequest(
            f"Invalid mime_type '{req.mime_type}' for a JSONL file; use application/jsonl.", param="mime_type"
        )
    if not 0 < req.bytes <= limits.max_bytes:
        raise InvalidRequest(
            f"bytes must be between 1 and {limits.max_bytes} (the largest upload).", param="bytes"
        )
    row = UploadRow(
        id=new_id("upload_"),
        tenant_id=tenant_id,
        filename=filename,
        purpose=req.purpose,
        bytes=req.bytes,
        mime_type=mime_type,
        status=UploadStatus.PENDING,
        created_at=now,
        expires_at=now + limits.expire_after,
        file_expires_after_s=req.expires_after.seconds if req.expires_after is not None else None,
    )
    session.add(row)
    return Upload.from_row(row)


def add_part(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    *,
    tenant_id: str,
    upload_id: str,
    chunks: Iterable[bytes],
    limits: Limits,
    now: datetime,
) -> UploadPart:
    """Stream one part's body (`chunks`, read only once the upload is known to be the caller's and
    pending) into the blob store and add the part."""
    with session_scope(sessions) as session:
        _get_pending(session, tenant_id=tenant_id, upload_id=upload_id, action="add a part to", now=now)
    part_id = new_id("part_")
    try:
        stored = blobs.put(part_id, chunks, max_bytes=limits.max_part_bytes)
    except PayloadTooLarge:
        raise PayloadTooLarge(
            f"A part may be at most {limits.max_part_bytes} bytes.", param="data", code="part_too_large"
        ) from None
    try:
        if stored.size == 0:
            raise InvalidRequest("The part is empty.", param="data")
        with session_scope(sessions) as session:
            _get_pending(session, tenant_id=tenant_id, upload_id=upload_id, action="add a part to", now=now)
            part = UploadPartRow(
                id=part_id, upload_id=upload_id, blob_key=part_id, bytes=stored.size, created_at=now
            )
            session.add(part)
            return UploadPart.from_row(part)
    except BaseException:
        blobs.delete(part_id)  # no committed row references it
        raise


def _ordered_parts(session: Session, upload: UploadRow, part_ids: list[str]) -> list[UploadPartRow]:
    if not part_ids:
        raise InvalidRequest("part_ids must list the upload's parts, in order.", param="part_ids")
    found = {
        part.id: part
        for part in session.scalars(
            select(UploadPartRow).where(UploadPartRow.upload_id == upload.id, UploadPartRow.id.in_(part_ids))
        )
    }
    seen: set[str] = set()
    for index, part_id in enumerate(part_ids):
        if part_id not in found:
            raise InvalidRequest(
                f"No part {part_id} in Upload {upload.id}.", param=f"part_ids[{index}]", code="part_not_found"
            )
        if part_id in seen:
            raise InvalidRequest(f"Part {part_id} is listed twice.", param=f"part_ids[{index}]")
        seen.add(part_id)
    parts = [found[part_id] for part_id in part_ids]
    total = sum(part.bytes for part in parts)
    if total != upload.bytes:
        raise InvalidRequest(
            f"The parts add up to {total} bytes, but the upload was created with bytes={upload.bytes}.",
            param="part_ids",
            code="bytes_mismatch",
        )
    return parts


def complete_upload(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    *,
    tenant_id: str,
    upload_id: str,
    part_ids: list[str],
    md5: str | None,
    now: datetime,
    personal_data_default: PersonalDataPolicy = "warn",
) -> Upload:
    """Assemble the parts into a new file (validated like any upload, under its tenant's
    personal-data policy, else `personal_data_default`) and complete the upload."""
    with session_scope(sessions) as session:
        upload = _get_pending(session, tenant_id=tenant_id, upload_id=upload_id, action="complete", now=now)
        keys = [part.blob_key for part in _ordered_parts(session, upload, part_ids)]
        declared = upload.bytes
    file_id = new_id("file-")
    composed = compose(blobs, file_id, keys, max_bytes=declared)
    try:
        if composed.stored.size != declared:  # a part's body differs from its row: never expected
            raise InvalidRequest(
                f"The parts hold {composed.stored.size} bytes, not {declared}.", param="part_ids"
            )
        if md5 is not None and md5.strip().lower() != composed.md5:
            raise InvalidRequest(
                f"The file's MD5 is {composed.md5}, not the md5 given ({md5}).",
                param="md5",
                code="md5_mismatch",
            )
        with session_scope(sessions) as session:
            upload = _claim(
                session, tenant_id=tenant_id, upload_id=upload_id, status=UploadStatus.COMPLETED, now=now
            )
            expires_at = (
                now + timedelta(seconds=upload.file_expires_after_s) if upload.file_expires_after_s else None
            )
            file_row = files.record_assembled_file(
                session,
                composed.stored,
                tenant_id=tenant_id,
                filename=upload.filename,
                purpose=upload.purpose,
                policy=files.personal_data_policy(session, tenant_id, None, personal_data_default),
                expires_at=expires_at,
            )
            file_row.created_at = now
            upload.file_id = file_row.id
            _drop_parts(session, blobs, upload.id)
            log.info("upload %s completed into %s (%d bytes)", upload.id, file_row.id, composed.stored.size)
            return Upload.from_row(upload, File.from_row(file_row))
    except BaseException:
        blobs.delete(file_id)  # no committed row references it
        raise


def present(session: Session, row: UploadRow) -> Upload:
    """An upload as its object shows it now: with its file once it is completed."""
    file_row = session.get(FileRow, row.file_id) if row.file_id else None
    return Upload.from_row(row, File.from_row(file_row) if file_row is not None else None)


def cancel_upload(
    session: Session, blobs: BlobStore, *, tenant_id: str, upload_id: str, now: datetime
) -> Upload:
    """Cancel a pending upload; its parts' blobs go once that commits."""
    upload = _claim(session, tenant_id=tenant_id, upload_id=upload_id, status=UploadStatus.CANCELLED, now=now)
    _drop_parts(session, blobs, upload.id)
    return Upload.from_row(upload)


def _claim(
    session: Session, *, tenant_id: str, upload_id: str, status: UploadStatus, now: datetime
) -> UploadRow:
    """Move a pending, unexpired upload of the tenant to `status`, or refuse as its state says."""
    action = {UploadStatus.COMPLETED: "complete", UploadStatus.CANCELLED: "cancel"}.get(status, "change")
    upload = _get_pending(session, tenant_id=tenant_id, upload_id=upload_id, action=action, now=now)
    moved = session.execute(
        update(UploadRow)
        .where(UploadRow.id == upload_id, UploadRow.status == UploadStatus.PENDING)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(upload)
        raise _state_error(upload, action, now=now) or Conflict(f"Upload {upload_id} changed meanwhile.")
    session.refresh(upload)
    return upload


def _drop_parts(session: Session, blobs: BlobStore, upload_id: str) -> None:
    for part in list(session.scalars(select(UploadPartRow).where(UploadPartRow.upload_id == upload_id))):
        delete_after_commit(session, blobs, part.blob_key)
        session.delete(part)


def sweep_expired(sessions: sessionmaker[Session], blobs: BlobStore, *, now: datetime) -> int:
    """Mark the pending uploads past their expiry `expired` and drop their parts, and drop any part
    left on an upload that has ended (a part added while its upload was being ended); returns how
    many uploads expired. Idempotent: two sweeps at once only repeat deletions."""
    expired = 0
    while True:
        with session_scope(sessions) as session:
            due = list(
                session.scalars(
                    select(UploadRow)
                    .where(UploadRow.status == UploadStatus.PENDING, UploadRow.expires_at <= now)
                    .limit(SWEEP_BATCH)
                )
            )
            for upload in due:
                upload.status = UploadStatus.EXPIRED
                _drop_parts(session, blobs, upload.id)
        expired += len(due)
        if len(due) < SWEEP_BATCH:
            break
    with session_scope(sessions) as session:
        ended = select(UploadRow.id).where(UploadRow.status != UploadStatus.PENDING)
        for part in list(session.scalars(select(UploadPartRow).where(UploadPartRow.upload_id.in_(ended)))):
            delete_after_commit(session, blobs, part.blob_key)
            session.delete(part)
    if expired:
        log.info("uploads sweep: %d uploads expired", expired)
    return expired
