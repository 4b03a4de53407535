"""Uploaded files (bodies live in the blob store), their copies at providers, and preparations
(source data turned into fine-tuning files)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.clock import utcnow
from service.db import Base, UTCDateTime


class FileStatus(StrEnum):
    """`uploaded` until a worker has validated the file, then `processed` or `error`."""

    UPLOADED = "uploaded"
    PROCESSED = "processed"
    ERROR = "error"


class FileRow(Base):
    __tablename__ = "files"
    __table_args__ = (Index("ix_files_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    status_details: Mapped[str | None] = mapped_column(Text, nullable=True)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A prepared file: the source file it was made from, and the preparation that made it.
    source_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    preparation_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # warn | redact | reject, chosen at upload (null for files the service made).
    personal_data_policy: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Under `redact`: the redacted copy of this file; on the copy, the file it was made from.
    redacted_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    redacted_from: Mapped[str | None] = mapped_column(String(40), nullable=True)


class ProviderFileRow(Base):
    """A file's copy at a provider, so each file is uploaded to each provider account once
    (`provider` is the provider's name, or `name~credentials id` for a tenant's own account).

    The row exists from the moment an upload is claimed; `provider_file_id` is set once the upload
    succeeded. While `upload_claimed_until` lies ahead, another worker's upload is in progress.
    """

    __tablename__ = "provider_files"

    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(96), primary_key=True)
    provider_file_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    upload_claim: Mapped[str | None] = mapped_column(String(40), nullable=True)
    upload_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PreparationStatus(StrEnum):
    """`queued` until a worker has prepared a large source; a small one is decided in the request."""

    QUEUED = "queued"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PreparationRow(Base):
    """One preparation of a source file: its options, and what it made or why it failed. The
    source may be deleted later; its id stays."""

    __tablename__ = "file_preparations"
    __table_args__ = (Index("ix_file_preparations_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source_file_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    training_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    validation_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
