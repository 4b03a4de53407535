"""File objects, as OpenAI's API shapes them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.clock import to_unix
from service.files.models import FileRow
from service.files.report import PersonalDataPolicy, ValidationReport

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
