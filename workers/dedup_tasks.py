"""Forget what deduplication no longer needs (scheduled by beat every hour): idempotency keys
after a day, provider webhook ids after a week (OpenAI retries a delivery for up to three days)."""

from __future__ import annotations

import logging

from service.db import session_scope
from service.idempotency.service import purge_expired
from service.jobs.provider_webhooks import forget_old
from service.tasks import TaskName
from workers.celery_app import celery_app
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


@celery_app.task(name=TaskName.DEDUP_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_dedup_records() -> None:
    with session_scope(get_runtime().sessions) as session:
        keys = purge_expired(session)
        webhooks = forget_old(session)
    if keys or webhooks:
        log.info("forgot %d idempotency keys and %d provider webhook ids", keys, webhooks)
