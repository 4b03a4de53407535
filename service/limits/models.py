"""Per-minute proxy limits set on a tenant or an API key (a row only where one is set)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base


class LimitRow(Base):
    __tablename__ = "rate_limits"

    owner_id: Mapped[str] = mapped_column(String(40), primary_key=True)  # a tenant's or a key's id
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # None: the FTM_{KEY,TENANT}_*_PER_MINUTE default; 0: no limit.
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
