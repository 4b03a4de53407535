"""Deployments (a stable name a client passes as `model`) and their immutable versions.

A deployment row holds only its identity and which version is current; everything that decides
routing (targets, fallbacks, sticky routing, promotion) lives in a version row, written once and
never changed, so the history is exactly what served and rollback is copying an old version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.clock import utcnow
from service.db import Base, UTCDateTime


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_deployments_tenant_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # dep_…
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)  # the current version's number
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeploymentVersionRow(Base):
    __tablename__ = "deployment_versions"
    __table_args__ = (
        UniqueConstraint("deployment_id", "version", name="uq_deployment_versions_deployment_version"),
        Index("ix_deployment_versions_tenant", "tenant_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # depver_…
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"model", "weight"}]
    fallbacks: Mapped[list[str]] = mapped_column(JSON)
    sticky: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # {"source", "header"}
    promotion: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(String(16))  # created | updated | rolled_back | promoted
    rolled_back_to: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # key id or job id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PromotionDecisionRow(Base):
    """What a gated deployment decided about a new model of the family it follows: `pending` while
    the model is compared with the deployment's current target, then `promoted` (with the version
    it made) or `refused`, with the reason and the comparison as evidence.

    The eval, its runs and the comparison are plain values here: deployments know nothing of
    evals (the evals feature fills them in and calls `service.deployments.gate.decide`)."""

    __tablename__ = "promotion_decisions"
    __table_args__ = (
        UniqueConstraint("deployment_id", "job_id", name="uq_promotion_decisions_deployment_job"),
        Index("ix_promotion_decisions_tenant", "tenant_id"),
        Index("ix_promotion_decisions_job", "job_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # promo_…
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(255))  # the candidate: the job's fine-tuned model
    gate: Mapped[dict[str, Any]] = mapped_column(JSON)  # the rule, as it stood when the job succeeded
    status: Mapped[str] = mapped_column(String(16))  # pending | promoted | refused
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    baseline_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    eval_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    candidate_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    baseline_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the version a promotion made
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
