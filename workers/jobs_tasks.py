"""Submit jobs to their provider, refresh them, and sweep the ones that are due.

Retries live in the database, not in Celery: a failed submit attempt sets when the job is due
again, and the sweep queues it then (see `service.jobs.submission`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from service.jobs import refresh, submission
from service.jobs.access import ProviderAccess
from service.providers.errors import ProviderRejected, ProviderUnavailable
from service.tasks import TaskName
from workers.celery_app import celery_app
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


@celery_app.task(name=TaskName.JOBS_SUBMIT.value, acks_late=True, ignore_result=True)
def submit_job(job_id: str) -> str:
    runtime = get_runtime()
    outcome = submission.submit(runtime.sessions, job_id, ProviderAccess.from_runtime(runtime))
    log.info("jobs.submit %s: %s", job_id, outcome)
    return outcome.value


@celery_app.task(name=TaskName.JOBS_REFRESH.value, acks_late=True, ignore_result=True)
def refresh_job(job_id: str) -> None:
    runtime = get_runtime()
    try:
        refresh.refresh(runtime.sessions, job_id, ProviderAccess.from_runtime(runtime))
    except (ProviderUnavailable, ProviderRejected):
        pass  # the refresh has postponed the job and said why; its next refresh is in the database


@celery_app.task(name=TaskName.JOBS_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_jobs() -> int:
    runtime = get_runtime()
    ahead = timedelta(seconds=runtime.settings.job_refresh_interval_s / 2)  # beat's period, halved
    return refresh.sweep_all(runtime.sessions, ahead=ahead)
