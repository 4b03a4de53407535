"""Submit jobs to their provider, refresh them, and sweep the ones that are due."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task

from service.db import session_scope
from service.jobs import sync
from service.providers.errors import ProviderUnavailable
from service.tasks import TaskName
from workers.celery_app import celery_app
from workers.runtime import get_runtime

log = logging.getLogger(__name__)
MAX_RETRIES = 8


def _retry_countdown(task: Task[Any, Any], error: ProviderUnavailable) -> float:
    """Exponential backoff, or the provider's Retry-After when longer; never past half the
    visibility timeout (a longer countdown would be redelivered and run twice)."""
    backoff = min(2.0**task.request.retries, 300.0)
    wanted = max(backoff, error.retry_after_s or 0.0)
    return min(wanted, get_runtime().settings.celery_visibility_timeout_s / 2)


def _access() -> sync.ProviderAccess:
    runtime = get_runtime()
    return sync.ProviderAccess(
        runtime.providers, runtime.blobs, timedelta(seconds=runtime.settings.job_refresh_interval_s)
    )


@celery_app.task(
    bind=True, name=TaskName.JOBS_SUBMIT.value, acks_late=True, ignore_result=True, max_retries=MAX_RETRIES
)
def submit_job(self: Task[Any, Any], job_id: str) -> None:
    try:
        sync.submit(get_runtime().sessions, job_id, _access())
    except ProviderUnavailable as error:
        log.warning("jobs.submit %s: provider unavailable (%s); retrying", job_id, error.message)
        raise self.retry(countdown=_retry_countdown(self, error)) from error


@celery_app.task(name=TaskName.JOBS_REFRESH.value, acks_late=True, ignore_result=True)
def refresh_job(job_id: str) -> None:
    try:
        sync.refresh(get_runtime().sessions, job_id, _access())
    except ProviderUnavailable as error:
        log.warning(
            "jobs.refresh %s: provider unavailable (%s); the next sweep retries", job_id, error.message
        )


@celery_app.task(name=TaskName.JOBS_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_jobs() -> int:
    with session_scope(get_runtime().sessions) as session:
        return sync.sweep(session)
