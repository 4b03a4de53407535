"""Usage counters: one row per (tenant, key, deployment and version, model, provider, hour).

Rows are written only by the usage flusher, as upserts that add to the counters, so any number of
API processes can flush into the same row. `deployment` is "" and `deployment_version` 0 when the
request named a model directly (a unique constraint does not match NULLs).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime


class UsageRow(Base):
    __tablename__ = "usage_hours"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id",
            "key_id",
            "deployment",
            "deployment_version",
            "model",
            "provider",
            "hour",
            name="uq_usage_hours_bucket",
        ),
        Index("ix_usage_hours_tenant_hour", "tenant_id", "hour"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(String(40))
    deployment: Mapped[str] = mapped_column(String(64))
    deployment_version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(256))
    provider: Mapped[str] = mapped_column(String(64))
    hour: Mapped[datetime] = mapped_column(UTCDateTime)  # the start of the hour, UTC
    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    latency_ms_total: Mapped[float] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: no known price
