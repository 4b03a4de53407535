"""`/v1/files`: upload, list, retrieve, delete, content (OpenAI-compatible), and the validation
report (native extra)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi import File as FilePart
from fastapi.responses import StreamingResponse

from service.blobs.store import iter_chunks
from service.contract import errors
from service.deps import DbSession, FilesCaller, IdempotentCreate, get_runtime
from service.errors import PayloadTooLarge
from service.files import preparation_service, service
from service.files.models import FileRow, PreparationRow
from service.files.names import content_disposition
from service.files.preparation import PreparationCreate
from service.files.report import ValidationReport
from service.files.schemas import File, FileDeleted, FilePreparation, FileValidation
from service.idempotency.service import reload_owned
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
    file: Annotated[
        UploadFile,
        FilePart(
            description="A JSONL file named `*.jsonl` (`fine-tune`), or source data `*.csv`, `*.tsv`, `*.json` (`user_data`)."
        ),
    ],
    purpose: Annotated[
        str,
        Form(
            description="`fine-tune`, or `user_data` for source data to prepare.",
            json_schema_extra={"enum": ["fine-tune", "user_data"]},
        ),
    ],
    idempotency: IdempotentCreate,
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
    """Upload a file. A `fine-tune` file is `uploaded` at once and validated by a worker within
    seconds; `user_data` (source data) is `processed` at once and checked when it is prepared.
    With an `Idempotency-Key`, a retry of the same upload (same name, purpose and bytes) returns
    the file the first request created."""
    runtime = get_runtime(request)
    limit = runtime.settings.max_upload_bytes
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit + 64 * 1024:
        raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.", param="file")
    policy = service.personal_data_policy(
        session, caller.tenant_id, personal_data, runtime.settings.personal_data_policy
    )
    upload = service.store_upload(
        runtime.blobs, filename=file.filename, purpose=purpose, chunks=_chunks(file), max_bytes=limit
    )
    try:
        created = idempotency.create(
            session,
            tenant_id=caller.tenant_id,
            route="POST /v1/files",
            parameters={
                "filename": upload.filename,
                "purpose": purpose,
                "bytes": upload.stored.size,
                "sha256": upload.stored.sha256,
                "personal_data": policy,
            },
            make=lambda: File.from_row(
                service.record_upload(session, upload, tenant_id=caller.tenant_id, policy=policy)
            ),
            reload=reload_owned(session, FileRow, caller.tenant_id, File.from_row),
        )
    except Exception:
        runtime.blobs.delete(upload.file_id)  # nothing references it
        raise
    if created.id != upload.file_id:  # a replay: the body stored again is nobody's
        runtime.blobs.delete(upload.file_id)
    return created


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
        source_file_id=row.source_file_id,
        preparation_id=row.preparation_id,
    )


@router.post("/files/{file_id}/preparations", response_model=FilePreparation, responses=errors(404))
def prepare_file(
    request: Request,
    file_id: str,
    body: PreparationCreate,
    caller: FilesCaller,
    session: DbSession,
    idempotency: IdempotentCreate,
) -> FilePreparation:
    """Prepare a source file (native): a CSV, TSV or JSON array of objects uploaded with purpose
    `user_data` becomes JSONL `fine-tune` files, a training file and, with `validation_split`, a
    validation file drawn by a seeded sample. Rows map to chat or prompt-completion examples by
    the column mapping; exact duplicates are dropped. A source of up to
    `FTM_PREPARATION_INLINE_BYTES` is prepared in the request (`succeeded`); a larger one is
    `queued` for a worker: follow it with `GET /v1/preparations/{id}`. The files are validated like
    any upload and name their source and preparation (`GET /v1/files/{id}/validation`). A bad
    option, or a small source's row with a problem, is a 400 naming it, and nothing is created."""
    runtime = get_runtime(request)
    return idempotency.create(
        session,
        tenant_id=caller.tenant_id,
        route=f"POST /v1/files/{file_id}/preparations",
        parameters=body.model_dump(mode="json", exclude_unset=True),
        make=lambda: FilePreparation.from_row(
            preparation_service.create_preparation(
                session,
                runtime.blobs,
                tenant_id=caller.tenant_id,
                file_id=file_id,
                options=body,
                inline_bytes=runtime.settings.preparation_inline_bytes,
                max_upload_bytes=runtime.settings.max_upload_bytes,
                default_policy=runtime.settings.personal_data_policy,
            )
        ),
        reload=reload_owned(session, PreparationRow, caller.tenant_id, FilePreparation.from_row),
    )


@router.get("/preparations/{preparation_id}", response_model=FilePreparation, responses=errors(404))
def retrieve_preparation(preparation_id: str, caller: FilesCaller, session: DbSession) -> FilePreparation:
    """A preparation (native): its status, options, summary, the files it made, or its error."""
    row = preparation_service.get_preparation(
        session, tenant_id=caller.tenant_id, preparation_id=preparation_id
    )
    return FilePreparation.from_row(row)
