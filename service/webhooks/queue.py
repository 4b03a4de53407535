"""Handing delivery attempts to the workers: through the outbox (sent once the transaction that
decided them commits), `BATCH_SIZE` deliveries to a `webhooks.deliver` task, which makes their
attempts concurrently."""

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
