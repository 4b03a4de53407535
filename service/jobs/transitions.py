"""A job's status changes, with what comes with them: the webhook event of a final status, and of
entering `running` (in the same transaction) and the event-log line of a failure. The rules themselves are `service.jobs.states`."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from service.clock import utcnow
from service.jobs.events import add_event
from service.jobs.models import JobRow
from service.jobs.states import TERMINAL, WEBHOOK_EVENT, Status, can_transition
from service.webhooks.service import emit_event

log = logging.getLogger(__name__)


def transition(session: Session, job: JobRow, new: Status, *, now: datetime | None = None) -> bool:
    """Move `job` to `new` if the state machine allows it; a final status, or entering `running`
    (started or resumed), emits its webhook event in the same transaction. Returns whether the status changed."""
    current = Status(job.status)
    if current == new or not can_transition(current, new):
        if current != new:
            log.info("job %s: ignoring %s -> %s", job.id, current, new)
        return False
    now = now or utcnow()
    job.status = new.value
    job.updated_at = now
    if new in TERMINAL:
        job.finished_at = job.finished_at or now
        job.next_refresh_at = None
    if new in WEBHOOK_EVENT:
        emit_event(session, tenant_id=job.tenant_id, type=WEBHOOK_EVENT[new], data_id=job.id)
    return True


def fail(session: Session, job: JobRow, *, code: str, message: str, param: str | None) -> None:
    job.error = {"code": code, "message": message, "param": param}
    if transition(session, job, Status.FAILED):
        add_event(session, job, f"Fine-tuning job failed: {message}", level="error")
