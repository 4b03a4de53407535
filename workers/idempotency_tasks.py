"""Forget idempotency keys older than a day (scheduled by beat every hour)."""

from __future__ import annotations

import logging

from service.db import session_scope
from service.idempotency.service import purge_expired
from service.tasks import TaskName
from workers.celery_app import celery_app
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


@celery_app.task(name=TaskName.IDEMPOTENCY_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_idempotency_keys() -> None:
    with session_scope(get_runtime().sessions) as session:
        purged = purge_expired(session)
    if purged:
        log.info("forgot %d idempotency keys older than a day", purged)
