"""Uploads in progress (OpenAI's `/v1/uploads`) and their parts, whose bodies live in the blob store
until the upload is completed into a file, cancelled or expired."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.clock import utcnow
from service.db import Base, UTCDateTime


class UploadStatus(StrEnum):
    """`pending` while parts are added; then `completed` (into a file), `cancelled` or `expired`."""

    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class UploadRow(Base):
    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_status_expires", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The file's own expiry (OpenAI's `expires_after`), in seconds after the file is created.
    file_expires_after_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class UploadPartRow(Base):
    """A part's body is the blob `blob_key` (the part's id); the row goes when the upload ends."""

    __tablename__ = "upload_parts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"), index=True)
    blob_key: Mapped[str] = mapped_column(String(255), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
