"""File objects, as OpenAI's API shapes them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.clock import to_unix
from service.files.models import FileRow
from service.files.preparation import PreparationCreate, PreparationSummary
from service.files.report import ValidationReport

FileStatus = Literal["uploaded", "processed", "error"]


class File(BaseModel):
    """An uploaded file. `status` is `uploaded` until a worker has validated it, then `processed`
    or `error` (with `status_details` naming the first bad line)."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: FileStatus
    status_details: str | None = None
    expires_at: int | None = None

    @classmethod
    def from_row(cls, row: FileRow) -> File:
        return cls(
            id=row.id,
            bytes=row.bytes,
            created_at=to_unix(row.created_at) or 0,
            filename=row.filename,
            purpose=row.purpose,
            status=row.status,
            status_details=row.status_details,
            expires_at=to_unix(row.expires_at),
        )


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class FileValidation(BaseModel):
    """The validation report of a file (native extra); `report` is null until a worker has
    validated the file."""

    object: Literal["file.validation"] = "file.validation"
    file_id: str
    status: FileStatus
    report: ValidationReport | None
    source_file_id: str | None = Field(None, description="a prepared file: the source file it was made from")
    preparation: dict[str, Any] | None = Field(
        None, description="a prepared file: the preparation's `options` and `summary`"
    )


class FilePreparation(BaseModel):
    """A preparation's outcome (native): the fine-tuning files made from a source file, and what
    was read and written. The files are validated by a worker like any upload."""

    object: Literal["file.preparation"] = "file.preparation"
    source_file_id: str
    training_file: File
    validation_file: File | None
    options: PreparationCreate
    summary: PreparationSummary
