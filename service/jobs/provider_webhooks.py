"""A provider's webhook about one of its jobs makes our job due for a refresh at once.

The webhook says only that something happened (`fine_tuning.job.succeeded`, ...); what happened
is read from the provider by the usual refresh, so a forged, stale or reordered webhook can make a
job be looked at sooner, never change it. Each delivery is acted on once, by its `webhook-id`: a
provider's retries of it are acknowledged and ignored. Polling stays the backstop for webhooks that
never arrive.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.clock import utcnow
from service.jobs.models import JobRow, ProviderWebhookRow
from service.jobs.states import TERMINAL, Status
from service.outbox import service as outbox
from service.providers.webhooks import ProviderWebhook
from service.tasks import TaskName

log = logging.getLogger(__name__)

KEPT = timedelta(days=7)  # OpenAI retries a delivery for up to 3 days


class Outcome(StrEnum):
    REFRESHING = "refreshing"  # the job is queued for a refresh now
    DUPLICATE = "duplicate"  # this webhook-id was acted on before
    IGNORED = "ignored"  # not about a job of ours that is still active


def receive(session: Session, provider: str, webhook: ProviderWebhook) -> Outcome:
    """Record the delivery and queue a refresh of the job it is about (one transaction)."""
    try:
        with session.begin_nested():
            session.add(
                ProviderWebhookRow(
                    provider=provider,
                    webhook_id=webhook.webhook_id,
                    type=webhook.type,
                    provider_job_id=webhook.job_id,
                )
            )
    except IntegrityError:
        return Outcome.DUPLICATE
    if webhook.job_id is None:
        return Outcome.IGNORED
    job = session.scalar(
        select(JobRow).where(JobRow.provider == provider, JobRow.provider_job_id == webhook.job_id)
    )
    if job is None or Status(job.status) in TERMINAL:
        return Outcome.IGNORED
    job.next_refresh_at = utcnow()
    job.quiet_polls = 0
    outbox.enqueue(session, TaskName.JOBS_REFRESH, job_id=job.id)
    log.info("provider %s: %s for job %s; refreshing it now", provider, webhook.type, job.id)
    return Outcome.REFRESHING


def forget_old(session: Session, *, now: datetime | None = None) -> int:
    """Forget the webhook ids received more than `KEPT` ago; how many."""
    result = session.execute(
        delete(ProviderWebhookRow).where(ProviderWebhookRow.received_at <= (now or utcnow()) - KEPT)
    )
    return int(getattr(result, "rowcount", 0) or 0)
