"""Fine-tuning jobs, their events and checkpoints. Our ids; the provider's stored beside them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.clock import utcnow
from service.db import Base, UTCDateTime


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_jobs_due", "status", "next_refresh_at"),
        UniqueConstraint("provider", "provider_job_id", name="uq_jobs_provider_job"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    provider_job_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # The tenant's own credentials it was created with (`service.providers.credentials_store`):
    # its provider job lives under that account, so it is followed with them or not at all.
    # Null: the operator's credentials.
    credentials_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    model: Mapped[str] = mapped_column(String(255))
    training_file: Mapped[str] = mapped_column(String(40))
    validation_file: Mapped[str | None] = mapped_column(String(40), nullable=True)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    method: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    suffix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(24))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result_files: Mapped[list[str]] = mapped_column(JSON, default=list)
    estimated_finish: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    submit_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Refreshes in a row that brought nothing new: each one doubles the wait before the next.
    quiet_polls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The submit claim: the one worker allowed to upload and create this job's provider job, until
    # its lease runs out (renewed while it works; a killed worker's claim simply expires).
    submit_claim: Mapped[str | None] = mapped_column(String(40), nullable=True)
    submit_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provider_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The create request as the client sent it (what a retry creates again); null before 0009.
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    retry_of: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The training cost estimated when the job was created (or, if its file was still being
    # validated, when the budget check ran before submit); counts against the tenant's budget.
    estimated_cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Optimistic locking: two workers applying the same provider change cannot both commit, so a
    # transition (and its webhook) happens once.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class JobEventRow(Base):
    __tablename__ = "job_events"
    __table_args__ = (
        UniqueConstraint("job_id", "provider_event_id", name="uq_job_events_provider_event"),
        Index("ix_job_events_job_created", "job_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    provider_event_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class JobCheckpointRow(Base):
    __tablename__ = "job_checkpoints"
    __table_args__ = (
        UniqueConstraint("job_id", "provider_checkpoint_id", name="uq_job_checkpoints_provider"),
    )

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    provider_checkpoint_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fine_tuned_model_checkpoint: Mapped[str] = mapped_column(String(255))
    step_number: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)


class ProviderWebhookRow(Base):
    """A provider's webhook delivery already acted on, by its `webhook-id` (retries repeat it)."""

    __tablename__ = "provider_webhooks"

    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    provider_job_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
