"""Routes of the Files API: upload, list, retrieve, delete, content."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from emulator.deps import CurrentEmulator, advance_jobs
from emulator.errors import NotFound
from emulator.files import service as files

router = APIRouter(prefix="/v1/files", tags=["files"], dependencies=[Depends(advance_jobs)])


@router.post("")
def upload_file(
    emulator: CurrentEmulator, file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()]
) -> dict[str, Any]:
    """Upload a file (multipart ``file`` and ``purpose``)."""
    data = file.file.read()
    return files.create_file(
        emulator.store,
        filename=file.filename or "",
        purpose=purpose,
        data=data,
        created_at=int(emulator.clock.now()),
    )


@router.get("")
def list_files(
    emulator: CurrentEmulator,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> dict[str, Any]:
    """Files, newest first by default."""
    return files.list_files(emulator.store, purpose=purpose, limit=limit, order=order, after=after)


@router.get("/{file_id}")
def retrieve_file(emulator: CurrentEmulator, file_id: str) -> dict[str, Any]:
    row = files.find_file(emulator.store, file_id)
    if row is None:
        raise NotFound(f"No such File object: {file_id}", param="id")
    return files.file_object(row)


@router.delete("/{file_id}")
def delete_file(emulator: CurrentEmulator, file_id: str) -> dict[str, Any]:
    return files.delete_file(emulator.store, file_id)


@router.get("/{file_id}/content")
def file_content(emulator: CurrentEmulator, file_id: str) -> Response:
    """The file's bytes."""
    return Response(files.file_content(emulator.store, file_id), media_type="application/octet-stream")
