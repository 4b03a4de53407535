"""Per-tenant monthly training budgets (US dollars, optional, set by a platform admin).

A job counts against its tenant's budget for the calendar month (UTC) it was created in, at the
cost estimated from its training file (`service.jobs.costs`). A create whose estimate, added to
the estimates of the tenant's jobs created this month, would exceed the budget is refused with a
400 before anything is written or uploaded. Failed and cancelled jobs still count: what they cost
at the provider is not known here, and a budget that filled up again on every failure would not
bound anything.

Two creates must not both squeeze under the budget, so the check and the job's insert run under a
lock on the tenant's row: `SELECT ... FOR UPDATE` on PostgreSQL; on SQLite, an UPDATE of the row,
which takes the database's write lock at once (a second writer waits for the first to commit and
then reads its job).

A job created while its training file is still being validated has no estimate yet. It is
created (without a cost) and checked when the file is validated, before anything is submitted:
a job over budget then fails with `error.code` `training_budget_exceeded`, and nothing is
uploaded to the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.auth.models import TenantRow
from service.db import is_postgres
from service.errors import InvalidRequest
from service.jobs.models import JobRow
from service.tenancy import owned

BUDGET_EXCEEDED = "training_budget_exceeded"


def month_start(now: datetime) -> datetime:
    """The start of `now`'s calendar month, in UTC."""
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Budget:
    """A tenant's budget this month and what its jobs created this month are estimated to cost."""

    monthly_usd: float
    committed_usd: float

    @property
    def left_usd(self) -> float:
        return round(max(0.0, self.monthly_usd - self.committed_usd), 6)

    def refusal(self, cost_usd: float) -> str | None:
        """Why a job estimated at `cost_usd` does not fit; None when it does."""
        if self.committed_usd + cost_usd <= self.monthly_usd + 1e-9:
            return None
        return (
            f"This job's estimated training cost of ${cost_usd:.2f}, with the ${self.committed_usd:.2f} "
            f"estimated for this month's jobs, would exceed the tenant's monthly training budget of "
            f"${self.monthly_usd:.2f} (${self.left_usd:.2f} left)."
        )


def committed_usd(session: Session, tenant_id: str, now: datetime) -> float:
    total = session.scalar(
        owned(JobRow, tenant_id)
        .where(JobRow.created_at >= month_start(now))
        .with_only_columns(func.coalesce(func.sum(JobRow.estimated_cost_usd), 0.0))
    )
    return round(float(total or 0.0), 6)


def budget_of(session: Session, tenant_id: str, now: datetime, *, lock: bool = False) -> Budget | None:
    """The tenant's budget this month (None: it has none). With `lock`, the tenant's row stays
    locked until the caller's transaction ends, so its check and insert are not interleaved."""
    if lock:
        tenant = _locked_tenant(session, tenant_id)
    else:
        tenant = session.get(TenantRow, tenant_id)
    if tenant is None or tenant.monthly_training_budget_usd is None:
        return None
    return Budget(tenant.monthly_training_budget_usd, committed_usd(session, tenant_id, now))


def _locked_tenant(session: Session, tenant_id: str) -> TenantRow | None:
    if is_postgres(session):
        return session.scalar(select(TenantRow).where(TenantRow.id == tenant_id).with_for_update())
    session.execute(
        update(TenantRow)
        .where(TenantRow.id == tenant_id)
        .values(monthly_training_budget_usd=TenantRow.monthly_training_budget_usd)
        .execution_options(synchronize_session=False)
    )
    tenant = session.get(TenantRow, tenant_id)
    if tenant is not None:
        session.refresh(tenant)
    return tenant


def check(session: Session, tenant_id: str, cost_usd: float | None, now: datetime) -> None:
    """Refuse (400) a job of `cost_usd` that does not fit the tenant's budget; locks the tenant's
    row for the rest of the caller's transaction when it has a budget."""
    budget = budget_of(session, tenant_id, now, lock=True)
    if budget is None or cost_usd is None:
        return
    reason = budget.refusal(cost_usd)
    if reason is not None:
        raise InvalidRequest(reason, code=BUDGET_EXCEEDED)
