"""Handing delivery attempts to the workers, through the outbox (sent once the transaction that
decided them commits): leased deliveries `BATCH_SIZE` to a `webhooks.deliver` task, or, for new
events, a task without ids that drains whatever is due (many events' deliveries, one batch)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from service.outbox import service as outbox
from service.tasks import TaskName

BATCH_SIZE = 100


def enqueue_attempts(session: Session, delivery_ids: Sequence[str]) -> None:
    """Queue the deliveries' next attempts once the caller's transaction commits."""
    for start in range(0, len(delivery_ids), BATCH_SIZE):
        chunk = list(delivery_ids[start : start + BATCH_SIZE])
        outbox.enqueue(session, TaskName.WEBHOOKS_DELIVER, delivery_ids=chunk)


def wake_workers(session: Session) -> None:
    """Queue a `webhooks.deliver` task that delivers whatever is due once the transaction commits."""
    outbox.enqueue(session, TaskName.WEBHOOKS_DELIVER)
