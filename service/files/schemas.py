"""File objects, as OpenAI's API shapes them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.clock import to_unix
from service.files.models import FileRow, PreparationRow
from service.files.preparation import PreparationCreate, PreparationSummary
from service.files.report import PersonalDataPolicy, ValidationReport

FileStatus = Literal["uploaded", "processed", "error"]
PreparationStatus = Literal["queued", "succeeded", "failed"]


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
    personal_data_policy: PersonalDataPolicy | None = Field(
        default=None, description="warn, redact or reject, chosen at upload (null for files the service made)"
    )
    redacted_file: str | None = Field(
        default=None, description="the redacted copy of this file, if one was made"
    )
    redacted_from: str | None = Field(
        default=None, description="on a redacted copy: the file it was made from"
    )
    report: ValidationReport | None
    source_file_id: str | None = Field(None, description="a prepared file: the source file it was made from")
    preparation_id: str | None = Field(None, description="a prepared file: the preparation that made it")


class PreparationError(BaseModel):
    """Why a preparation failed, as a request's error would say it."""

    message: str
    param: str | None = None
    code: str | None = None


class FilePreparation(BaseModel):
    """A preparation of a source file (native). `succeeded` at once for a small source; a large one
    is `queued` until a worker has prepared it, then `succeeded` (with `training_file` and, with a
    split, `validation_file`: ordinary `fine-tune` files, validated like any upload) or `failed`
    (with `error` naming the first bad row)."""

    id: str
    object: Literal["file.preparation"] = "file.preparation"
    status: PreparationStatus
    source_file_id: str
    created_at: int
    finished_at: int | None = None
    options: PreparationCreate
    summary: PreparationSummary | None = None
    training_file: str | None = None
    validation_file: str | None = None
    error: PreparationError | None = None

    @classmethod
    def from_row(cls, row: PreparationRow) -> FilePreparation:
        return cls(
            id=row.id,
            status=row.status,
            source_file_id=row.source_file_id,
            created_at=to_unix(row.created_at) or 0,
            finished_at=to_unix(row.finished_at),
            options=PreparationCreate.model_validate(row.options),
            summary=PreparationSummary.model_validate(row.summary) if row.summary is not None else None,
            training_file=row.training_file_id,
            validation_file=row.validation_file_id,
            error=PreparationError.model_validate(row.error) if row.error is not None else None,
        )
