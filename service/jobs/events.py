"""A job's event log: our own lifecycle messages and the provider's events, in one sequence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.clock import utcnow
from service.ids import new_id
from service.jobs.models import JobEventRow, JobRow


@dataclass(frozen=True)
class NewEvent:
    """One event to append to a job's log."""

    message: str
    level: str = "info"
    type_: str = "message"
    data: dict[str, Any] | None = None
    provider_event_id: str | None = None
    created_at: datetime | None = None


def _row(job: JobRow, seq: int, event: NewEvent) -> JobEventRow:
    return JobEventRow(
        id=new_id("ftevent-"),
        job_id=job.id,
        provider_event_id=event.provider_event_id,
        seq=seq,
        created_at=event.created_at or utcnow(),
        level=event.level if event.level in ("info", "warn", "error") else "info",
        type=event.type_ if event.type_ in ("message", "metrics") else "message",
        message=event.message,
        data=event.data,
    )


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
    event = NewEvent(message, level, type_, data, provider_event_id, created_at)
    row = _row(job, (last or 0) + 1, event)
    session.add(row)
    session.flush()
    return row


def recorded_provider_events(session: Session, job_id: str) -> tuple[set[str], int]:
    """The provider ids among the job's recorded events, and the log's last sequence number (0 when
    empty), in one read: what `add_events` needs to append only what is new."""
    rows = session.execute(
        select(JobEventRow.provider_event_id, JobEventRow.seq).where(JobEventRow.job_id == job_id)
    )
    known: set[str] = set()
    last = 0
    for provider_event_id, seq in rows:
        if provider_event_id:
            known.add(provider_event_id)
        last = max(last, seq)
    return known, last


def add_events(session: Session, job: JobRow, events: Sequence[NewEvent], *, last_seq: int) -> None:
    """Append `events` in order after sequence number `last_seq` (read in this transaction, by
    `recorded_provider_events`). The rows are flushed with the transaction as one batched insert,
    where `add_event` costs a read and an insert per event (a refresh brings ten or more)."""
    session.add_all(_row(job, last_seq + n, event) for n, event in enumerate(events, start=1))


def known_provider_event_ids(session: Session, job_id: str) -> set[str]:
    query = select(JobEventRow.provider_event_id).where(
        JobEventRow.job_id == job_id, JobEventRow.provider_event_id.is_not(None)
    )
    return {value for value in session.scalars(query) if value}
