"""`/v1/uploads` (OpenAI-compatible): create an upload, add parts, complete it into a file, cancel.

The parts route reads its body as a stream: `service.uploads.multipart` parses the form as it
arrives and the blob store writes the part as it is parsed, in the thread pool, pulling each
network chunk from the event loop (`_blocking`). A part is never whole in memory nor spooled to a
temporary file first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from service.contract import errors
from service.deps import DbSession, FilesCaller, IdempotentCreate, get_runtime
from service.idempotency.service import reload_owned
from service.routing import ServiceRoute
from service.uploads import service
from service.uploads.models import UploadRow
from service.uploads.multipart import field_chunks
from service.uploads.schemas import Upload, UploadComplete, UploadCreate, UploadPart

router = APIRouter(prefix="/v1", tags=["uploads"], route_class=ServiceRoute)
# Parts are up to 64 MiB: included with a body limit of their own (`service.app`).
parts_router = APIRouter(prefix="/v1", tags=["uploads"], route_class=ServiceRoute)

UploadId = Annotated[str, Path(description="The upload's id, `upload_…`.")]
STATE_ERRORS = errors(409, s409="The upload is already completed, cancelled or expired.")
PART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "data": {
                            "type": "string",
                            "format": "binary",
                            "description": "The part's bytes, at most 64 MiB.",
                        }
                    },
                }
            }
        },
    }
}


def _blocking(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """An async body stream as a plain iterator, for a thread of the pool: each chunk is awaited on
    the event loop while the thread waits."""

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk


@router.post("/uploads", response_model=Upload)
def create_upload(
    request: Request,
    body: UploadCreate,
    caller: FilesCaller,
    session: DbSession,
    idempotency: IdempotentCreate,
) -> Upload:
    """Create an upload of `bytes` bytes (at most 8 GB), to be sent in parts within an hour. With
    an `Idempotency-Key`, a retry returns the upload the first request created."""
    runtime = get_runtime(request)
    return idempotency.create(
        session,
        tenant_id=caller.tenant_id,
        route="POST /v1/uploads",
        parameters=body.model_dump(mode="json", exclude_unset=True),
        make=lambda: service.create_upload(
            session,
            body,
            tenant_id=caller.tenant_id,
            limits=service.Limits.of(runtime.settings),
            now=runtime.clock(),
        ),
        reload=reload_owned(session, UploadRow, caller.tenant_id, lambda row: service.present(session, row)),
    )


@parts_router.post(
    "/uploads/{upload_id}/parts", response_model=UploadPart, openapi_extra=PART_BODY, responses=STATE_ERRORS
)
async def add_upload_part(request: Request, upload_id: UploadId, caller: FilesCaller) -> UploadPart:
    """Add a part (the form field `data`, at most 64 MiB) to a pending upload. Parts may be added
    in any order, in parallel; the completion gives their order."""
    runtime = get_runtime(request)
    chunks = field_chunks(request.headers.get("content-type", ""), _blocking(request.stream()), field="data")
    return await run_in_threadpool(
        service.add_part,
        runtime.sessions,
        runtime.blobs,
        tenant_id=caller.tenant_id,
        upload_id=upload_id,
        chunks=chunks,
        limits=service.Limits.of(runtime.settings),
        now=runtime.clock(),
    )


@router.post("/uploads/{upload_id}/complete", response_model=Upload, responses=STATE_ERRORS)
def complete_upload(
    request: Request, upload_id: UploadId, body: UploadComplete, caller: FilesCaller
) -> Upload:
    """Complete an upload: its parts, in the order of `part_ids`, become a file (validated like any
    upload), returned as `file`. The parts must add up to the upload's `bytes`; `md5`, if given,
    must be the whole file's."""
    runtime = get_runtime(request)
    return service.complete_upload(
        runtime.sessions,
        runtime.blobs,
        tenant_id=caller.tenant_id,
        upload_id=upload_id,
        part_ids=body.part_ids,
        md5=body.md5,
        now=runtime.clock(),
        personal_data_default=runtime.settings.personal_data_policy,
    )


@router.post("/uploads/{upload_id}/cancel", response_model=Upload, responses=STATE_ERRORS)
def cancel_upload(request: Request, upload_id: UploadId, caller: FilesCaller, session: DbSession) -> Upload:
    """Cancel a pending upload; its parts are deleted."""
    runtime = get_runtime(request)
    return service.cancel_upload(
        session, runtime.blobs, tenant_id=caller.tenant_id, upload_id=upload_id, now=runtime.clock()
    )
