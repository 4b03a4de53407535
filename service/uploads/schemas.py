"""Upload and Upload Part objects and request bodies, as OpenAI's API shapes them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from service.clock import to_unix
from service.files.schemas import File
from service.uploads.models import UploadPartRow, UploadRow

UploadStatus = Literal["pending", "completed", "cancelled", "expired"]
FILE_EXPIRY_MIN_S = 3600
FILE_EXPIRY_MAX_S = 30 * 24 * 3600


class ExpiresAfter(BaseModel):
    """When the file made from the upload expires: `seconds` after its creation."""

    model_config = ConfigDict(extra="forbid")
    anchor: Literal["created_at"] = Field(description="`created_at`.")
    seconds: StrictInt = Field(ge=FILE_EXPIRY_MIN_S, le=FILE_EXPIRY_MAX_S, description="3600 to 2592000.")


class UploadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bytes: StrictInt = Field(description="The size of the whole file; the parts must add up to it.")
    filename: StrictStr = Field(min_length=1, max_length=255, description="`*.jsonl`.")
    mime_type: StrictStr = Field(min_length=1, max_length=255, description="e.g. `application/jsonl`.")
    purpose: StrictStr = Field(description="`fine-tune`.")
    expires_after: ExpiresAfter | None = Field(default=None, description="The file's expiry (optional).")


class UploadComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    part_ids: list[StrictStr] = Field(description="The upload's parts, in the order of the file.")
    md5: StrictStr | None = Field(default=None, description="The MD5 of the whole file, hex; checked.")


class Upload(BaseModel):
    """A file being uploaded in parts. `pending` until it is completed into `file`, cancelled, or
    expired (an hour after its creation)."""

    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    status: UploadStatus
    file: File | None = None

    @classmethod
    def from_row(cls, row: UploadRow, file: File | None = None) -> Upload:
        return cls(
            id=row.id,
            bytes=row.bytes,
            created_at=to_unix(row.created_at) or 0,
            expires_at=to_unix(row.expires_at) or 0,
            filename=row.filename,
            purpose=row.purpose,
            status=row.status,
            file=file,
        )


class UploadPart(BaseModel):
    """A part of an upload; its id goes into the completion's `part_ids`."""

    id: str
    object: Literal["upload.part"] = "upload.part"
    created_at: int
    upload_id: str

    @classmethod
    def from_row(cls, row: UploadPartRow) -> UploadPart:
        return cls(id=row.id, created_at=to_unix(row.created_at) or 0, upload_id=row.upload_id)
