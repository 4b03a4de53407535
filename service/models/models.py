"""Fine-tuned models and the tenant that owns each one (the proxy routes by this table)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from service.clock import utcnow
from service.db import Base, UTCDateTime


class FineTunedModelRow(Base):
    __tablename__ = "fine_tuned_models"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # the provider's `ft:` name
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    base_model: Mapped[str] = mapped_column(String(255))
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
