"""Every table, imported in one place so that Alembic and the tests see the whole schema."""

from __future__ import annotations

from service.auth.models import ApiKeyRow, TenantRow
from service.db import Base
from service.outbox.models import OutboxRow

metadata = Base.metadata

__all__ = ["ApiKeyRow", "OutboxRow", "TenantRow", "metadata"]
