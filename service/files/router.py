"""`/v1/files`: upload, list, retrieve, delete, content (OpenAI-compatible), and the validation
report (native extra)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi import File as FilePart
from fastapi.responses import StreamingResponse

from service.blobs.store import iter_chunks
from service.deps import DbSession, FilesCaller, get_runtime
from service.errors import PayloadTooLarge
from service.files import service
from service.files.names import content_disposition
from service.files.report import ValidationReport
from service.files.schemas import File, FileDeleted, FileValidation
from service.pagination import After, Order, Page
from service.routing import ServiceRoute

router = APIRouter(prefix="/v1", tags=["files"], route_class=ServiceRoute)
UPLOAD_CHUNK = 1024 * 1024


def _chunks(upload: UploadFile) -> Iterator[bytes]:
    while chunk := upload.file.read(UPLOAD_CHUNK):
        yield chunk


@router.post("/files", response_model=File)
def create_file(
    request: Request,
    caller: FilesCaller,
    session: DbSession,
    file: Annotated[UploadFile, FilePart(description="The JSONL file, named `*.jsonl`.")],
    purpose: Annotated[str, Form(description="`fine-tune`.", json_schema_extra={"enum": ["fine-tune"]})],
    personal_data: Annotated[
        str | None,
        Form(
            description="What validation does about personal data and secrets (native; the SDK sends "
            "it with `extra_body`): `warn` reports them, `redact` makes a redacted copy for jobs to "
            "train on, `reject` fails the file. Default: the tenant's, else FTM_PERSONAL_DATA_POLICY.",
            json_schema_extra={"enum": ["warn", "redact", "reject"]},
        ),
    ] = None,
) -> File:
    """Upload a file. It is `uploaded` at once and validated by a worker within seconds."""
    runtime = get_runtime(request)
    limit = runtime.settings.max_upload_bytes
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit + 64 * 1024:
        raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.", param="file")
    row = service.create_file(
        session,
        runtime.blobs,
        tenant_id=caller.tenant_id,
        filename=file.filename,
        purpose=purpose,
        chunks=_chunks(file),
        max_bytes=limit,
        personal_data=personal_data,
        default_personal_data=runtime.settings.personal_data_policy,
    )
    return File.from_row(row)


@router.get("/files", response_model=Page[File])
def list_files(
    caller: FilesCaller,
    session: DbSession,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Order = "desc",
    after: After = None,
) -> Page[File]:
    """List the tenant's files, newest first by default."""
    rows, has_more = service.list_files(
        session, tenant_id=caller.tenant_id, purpose=purpose, limit=limit, order=order, after=after
    )
    return Page[File].of([File.from_row(row) for row in rows], has_more)


@router.get("/files/{file_id}", response_model=File)
def retrieve_file(file_id: str, caller: FilesCaller, session: DbSession) -> File:
    """Retrieve a file."""
    return File.from_row(service.get_file(session, tenant_id=caller.tenant_id, file_id=file_id))


@router.delete("/files/{file_id}", response_model=FileDeleted)
def delete_file(request: Request, file_id: str, caller: FilesCaller, session: DbSession) -> FileDeleted:
    """Delete a file and its body."""
    service.delete_file(session, get_runtime(request).blobs, tenant_id=caller.tenant_id, file_id=file_id)
    return FileDeleted(id=file_id)


@router.get("/files/{file_id}/content", response_class=StreamingResponse)
def file_content(
    request: Request, file_id: str, caller: FilesCaller, session: DbSession
) -> StreamingResponse:
    """The file's bytes."""
    row = service.get_file(session, tenant_id=caller.tenant_id, file_id=file_id)
    body = get_runtime(request).blobs.open(row.blob_key)  # opened now: a missing body fails before headers
    return StreamingResponse(
        iter_chunks(body),
        media_type="application/octet-stream",
        headers={"Content-Disposition": content_disposition(row.filename)},
    )


@router.get("/files/{file_id}/validation", response_model=FileValidation)
def file_validation(file_id: str, caller: FilesCaller, session: DbSession) -> FileValidation:
    """The file's validation report: format and example count, errors and warnings counted by
    category with their lines, and token statistics per encoding."""
    row = service.get_file(session, tenant_id=caller.tenant_id, file_id=file_id)
    report = ValidationReport.model_validate(row.report) if row.report is not None else None
    return FileValidation(
        file_id=row.id,
        status=row.status,
        personal_data_policy=row.personal_data_policy,
        redacted_file=row.redacted_file_id,
        redacted_from=row.redacted_from,
        report=report,
    )
