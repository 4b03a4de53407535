"""Evals, their runs, and each run's items (one row per data source item: its sample and grades).

An item row is the unit of work of a run and its record of exactly-once sampling: it is claimed
(`sampling`, with the claiming attempt's token) and committed before its model is called, and its
sample is committed before it is graded. An item found `sampling` under another attempt's token was
being sampled by a worker that died; it is never sampled again (see `service.evals.runner`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.clock import utcnow
from service.db import Base, UTCDateTime


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED})


class ItemStatus(StrEnum):
    PENDING = "pending"  # not sampled yet
    SAMPLING = "sampling"  # claimed; its model is being called
    SAMPLED = "sampled"  # its sample is recorded; grading it is left
    DONE = "done"  # graded (or errored): final


class EvalRow(Base):
    __tablename__ = "evals"
    __table_args__ = (Index("ix_evals_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # eval_…
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    data_source_config: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"type", "schema"}
    testing_criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EvalRunRow(Base):
    __tablename__ = "eval_runs"
    __table_args__ = (
        Index("ix_eval_runs_eval_created", "eval_id", "created_at"),
        Index("ix_eval_runs_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # evalrun_…
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    eval_id: Mapped[str] = mapped_column(ForeignKey("evals.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    data_source: Mapped[dict[str, Any]] = mapped_column(JSON)  # as the caller gave it (file content aside)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # {"code", "message"}
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    result_counts: Mapped[dict[str, int]] = mapped_column(JSON)
    per_model_usage: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    per_testing_criteria_results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    lease_token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EvalRunItemRow(Base):
    __tablename__ = "eval_run_items"
    __table_args__ = (
        UniqueConstraint("run_id", "datasource_item_id", name="uq_eval_run_items_run_item"),
        Index("ix_eval_run_items_run_status", "run_id", "status"),
        Index("ix_eval_run_items_tenant", "tenant_id"),
    )

    id: Mapped[str] = mapped_column(String(48), primary_key=True)  # outputitem_…
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    eval_id: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[str] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"))
    datasource_item_id: Mapped[int] = mapped_column(Integer)
    item: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    claim_token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sample: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    passed: Mapped[bool | None] = mapped_column(nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # {"code", "message"}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobEvaluationStatus(StrEnum):
    QUEUED = "queued"  # recorded with the job's success; its runs are not created yet
    RUNNING = "running"  # its two runs exist and are being worked through
    COMPLETED = "completed"  # both runs completed; the comparison is recorded
    FAILED = "failed"  # it could not be made (see `error`); the job's success stands


class JobEvaluationRow(Base):
    """A succeeded fine-tuning job's evaluation: its fine-tuned model against its base model on
    its validation examples (two runs of one eval), and the comparison once both are done."""

    __tablename__ = "job_evaluations"
    __table_args__ = (
        UniqueConstraint("job_id", name="uq_job_evaluations_job"),
        Index("ix_job_evaluations_tenant", "tenant_id"),
        Index("ix_job_evaluations_base_run", "base_run_id"),
        Index("ix_job_evaluations_fine_tuned_run", "fine_tuned_run_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ftjobeval-…
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    base_model: Mapped[str] = mapped_column(String(255))
    fine_tuned_model: Mapped[str] = mapped_column(String(255))
    file_id: Mapped[str] = mapped_column(
        String(40)
    )  # the examples: the validation file, or the one asked for
    testing_criteria: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON, nullable=True
    )  # None: defaults
    eval_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    base_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    fine_tuned_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    items: Mapped[int] = mapped_column(Integer, default=0)
    skipped_examples: Mapped[int] = mapped_column(Integer, default=0)
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # {"code", "message"}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
