"""Enqueue work transactionally, and relay it to Celery.

`enqueue` adds a row in the caller's transaction: if the change rolls back, so does the work; if
it commits, the work will run even when Redis is down at that moment (the relay retries). The relay
publishes pending rows in id order and marks each one sent; PostgreSQL relays skip rows another
relay has locked, and SQLite runs one relay at a time (the workers hold a Redis lock for it).
Tasks are idempotent, so a row published twice (a crash between publish and commit) is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.clock import utcnow
from service.db import is_postgres
from service.logs import REQUEST_ID_HEADER, request_id_var
from service.outbox.models import OutboxRow
from service.tasks import TaskName

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any], dict[str, str]], None]
"""publish(task_name, kwargs, headers): headers carry `ftm_request_id` when the work has one."""
SENT_ROWS_KEPT_FOR = timedelta(days=7)
RELAY_BATCH = 200


def enqueue(session: Session, task: TaskName, *, delay: timedelta | None = None, **kwargs: Any) -> OutboxRow:
    """Queue `task(**kwargs)` once the caller's transaction commits (ids only, never secrets)."""
    now = utcnow()
    row = OutboxRow(
        task_name=task.value,
        kwargs=kwargs,
        created_at=now,
        available_at=now + (delay or timedelta()),
        request_id=request_id_var.get(),
    )
    session.add(row)
    return row


def relay(
    session: Session, publish: Publish, *, batch_size: int = RELAY_BATCH, now: datetime | None = None
) -> int:
    """Publish due rows; returns how many were sent. Stops at the first broker failure."""
    now = now or utcnow()
    query = (
        select(OutboxRow)
        .where(OutboxRow.sent_at.is_(None), OutboxRow.available_at <= now)
        .order_by(OutboxRow.id)
        .limit(batch_size)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    sent = 0
    for row in session.scalars(query):
        row.attempts += 1
        try:
            publish(
                row.task_name, dict(row.kwargs), {REQUEST_ID_HEADER: row.request_id} if row.request_id else {}
            )
        except Exception as error:  # any broker failure: keep the row, try again next relay
            row.last_error = f"{type(error).__name__}: {error}"[:2000]
            log.warning("outbox: publishing %s failed; will retry", row.task_name, extra={"row": row.id})
            break
        row.sent_at = now
        sent += 1
    return sent


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Delete rows sent more than a week ago."""
    cutoff = (now or utcnow()) - SENT_ROWS_KEPT_FOR
    result = session.execute(
        delete(OutboxRow).where(OutboxRow.sent_at.is_not(None), OutboxRow.sent_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def pending_count(session: Session) -> int:
    query = select(func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))
    return int(session.scalar(query) or 0)
