"""A run's lease: the one task working on it at a time, and the sweep that queues due runs.

A task takes the lease when the run is not final, nobody else holds an unexpired one, and the
tenant has fewer than `FTM_EVALS_TENANT_RUNS` runs leased; it renews it before every model call
and lets go when its slice ends (queueing the next task) or the provider asks to wait. A dead
worker's lease expires after `FTM_EVALS_LEASE_S` and the sweep queues the run again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.evals.models import EvalRunRow, RunStatus
from service.outbox import service as outbox
from service.tasks import TaskName
from service.tenancy import owned


class Outcome(StrEnum):
    FINISHED = "finished"  # the run reached a final status (now or before)
    LEASED = "leased"  # another worker holds it
    WAITING = "waiting"  # the tenant's other runs hold its share of workers
    BACKING_OFF = "backing_off"  # the provider asked to wait
    CONTINUED = "continued"  # the slice ran out; the next task is queued


def take_lease(
    sessions: sessionmaker[Session], settings: Settings, run_id: str, token: str, now: datetime
) -> Outcome | None:
    """None when this task now holds the run; else why it does not."""
    with session_scope(sessions) as session:
        run = session.get(EvalRunRow, run_id)
        if run is None or run.status not in (RunStatus.QUEUED, RunStatus.IN_PROGRESS):
            return Outcome.FINISHED
        busy = session.scalar(
            owned(EvalRunRow, run.tenant_id)
            .with_only_columns(func.count())
            .where(
                EvalRunRow.id != run_id,
                EvalRunRow.status == RunStatus.IN_PROGRESS,
                EvalRunRow.lease_until > now,
            )
        )
        if (busy or 0) >= settings.evals_tenant_runs:
            run.next_attempt_at = now + timedelta(seconds=settings.evals_backoff_s)
            return Outcome.WAITING
        taken = session.execute(
            update(EvalRunRow)
            .where(
                EvalRunRow.id == run_id,
                EvalRunRow.status.in_((RunStatus.QUEUED, RunStatus.IN_PROGRESS)),
                or_(EvalRunRow.lease_until.is_(None), EvalRunRow.lease_until < now),
            )
            .values(
                lease_token=token,
                lease_until=now + timedelta(seconds=settings.evals_lease_s),
                next_attempt_at=now + timedelta(seconds=settings.evals_lease_s),
                status=RunStatus.IN_PROGRESS,
                updated_at=now,
            )
        )
        return None if getattr(taken, "rowcount", 0) == 1 else Outcome.LEASED


def renew(
    sessions: sessionmaker[Session], settings: Settings, run_id: str, token: str, now: datetime
) -> bool:
    """Extend the lease; False when the run was cancelled (or taken over) meanwhile."""
    with session_scope(sessions) as session:
        renewed = session.execute(
            update(EvalRunRow)
            .where(
                EvalRunRow.id == run_id,
                EvalRunRow.lease_token == token,
                EvalRunRow.status == RunStatus.IN_PROGRESS,
            )
            .values(
                lease_until=now + timedelta(seconds=settings.evals_lease_s),
                next_attempt_at=now + timedelta(seconds=settings.evals_lease_s),
            )
        )
        return getattr(renewed, "rowcount", 0) == 1


def release(
    sessions: sessionmaker[Session],
    run_id: str,
    token: str,
    next_attempt_at: datetime,
    *,
    enqueue: bool = False,
) -> None:
    with session_scope(sessions) as session:
        run = session.get(EvalRunRow, run_id)
        if run is None or run.lease_token != token:
            return
        run.lease_token = None
        run.lease_until = None
        run.next_attempt_at = next_attempt_at
        if enqueue and run.status == RunStatus.IN_PROGRESS:
            outbox.enqueue(session, TaskName.EVALS_RUN, run_id=run.id)


def sweep(session: Session, settings: Settings, *, now: datetime | None = None) -> int:
    """Queue the runs that are due: not final, not leased, and past their `next_attempt_at`."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(EvalRunRow)
            .where(
                EvalRunRow.status.in_((RunStatus.QUEUED, RunStatus.IN_PROGRESS)),
                EvalRunRow.next_attempt_at <= now,
                or_(EvalRunRow.lease_until.is_(None), EvalRunRow.lease_until < now),
            )
            .limit(200)
        )
    )
    for run in due:
        run.next_attempt_at = now + timedelta(seconds=settings.evals_lease_s)
        outbox.enqueue(session, TaskName.EVALS_RUN, run_id=run.id)
    return len(due)
