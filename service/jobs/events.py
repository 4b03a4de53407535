"""A job's event log: our own lifecycle messages and the provider's events, in one sequence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.clock import utcnow
from service.ids import new_id
from service.jobs.models import JobEventRow, JobRow


def add_event(
    session: Session,
    job: JobRow,
    message: str,
    *,
    level: str = "info",
    type_: str = "message",
    data: dict[str, Any] | None = None,
    provider_event_id: str | None = None,
    created_at: datetime | None = None,
) -> JobEventRow:
    last = session.scalar(select(func.max(JobEventRow.seq)).where(JobEventRow.job_id == job.id))
    row = JobEventRow(
        id=new_id("ftevent-"),
        job_id=job.id,
        provider_event_id=provider_event_id,
        seq=(last or 0) + 1,
        created_at=created_at or utcnow(),
        level=level if level in ("info", "warn", "error") else "info",
        type=type_ if type_ in ("message", "metrics") else "message",
        message=message,
        data=data,
    )
    session.add(row)
    session.flush()
    return row


def known_provider_event_ids(session: Session, job_id: str) -> set[str]:
    query = select(JobEventRow.provider_event_id).where(
        JobEventRow.job_id == job_id, JobEventRow.provider_event_id.is_not(None)
    )
    return {value for value in session.scalars(query) if value}
