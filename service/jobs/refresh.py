"""Following jobs: the sweep that finds the ones due, and the refresh that brings one up to date
with its provider job. Provider calls happen with no transaction open; the answer is applied in one
short transaction (`service.jobs.snapshots`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from service.cache_changes import Change
from service.clock import utcnow
from service.db import is_postgres, session_scope
from service.jobs.access import ProviderAccess
from service.jobs.models import JobRow
from service.jobs.snapshots import Known, apply_snapshot, fetch_snapshot
from service.jobs.states import ACTIVE, TERMINAL, Status
from service.outbox import service as outbox
from service.tasks import TaskName

log = logging.getLogger(__name__)

SWEEP_LEASE = timedelta(seconds=60)


def refresh(sessions: sessionmaker[Session], job_id: str, access: ProviderAccess) -> bool:
    """Bring one job up to date with its provider job (idempotent). False when a concurrent change
    (a cancel, another refresh) won the race: the next sweep looks again."""
    with session_scope(sessions) as session:
        job = session.get(JobRow, job_id)
        if job is None or job.provider_job_id is None or Status(job.status) in TERMINAL:
            return True
        provider_name, provider_job_id = job.provider, job.provider_job_id
        known = Known.of(session, job)
    provider = access.providers.fine_tuning(provider_name)
    snapshot = fetch_snapshot(provider, provider.retrieve_job(provider_job_id), known)
    routes_changed: list[Change] = []
    try:
        with session_scope(sessions) as session:
            job = session.get(JobRow, job_id)
            if job is not None and Status(job.status) not in TERMINAL:
                routes_changed = apply_snapshot(session, job, snapshot, access)
    except StaleDataError:
        log.info("job %s changed while it was being refreshed; the next sweep refreshes it", job_id)
        return False
    for change in routes_changed:  # committed: every API process drops what it cached for these
        access.announce(change)
    return True


def sweep(session: Session, *, now: datetime | None = None, batch_size: int = 500) -> int:
    """Queue a submit or refresh for every active job that is due, leasing it for a minute so the
    next sweep does not queue it again while the task is pending. A job whose submit is claimed
    is left alone until the claim's lease runs out."""
    now = now or utcnow()
    query = (
        select(JobRow)
        .where(
            JobRow.status.in_([status.value for status in ACTIVE]),
            JobRow.next_refresh_at <= now,
            or_(JobRow.submit_claimed_until.is_(None), JobRow.submit_claimed_until <= now),
        )
        .order_by(JobRow.next_refresh_at)
        .limit(batch_size)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    jobs = list(session.scalars(query))
    for job in jobs:
        job.next_refresh_at = now + SWEEP_LEASE
        task = TaskName.JOBS_REFRESH if job.provider_job_id else TaskName.JOBS_SUBMIT
        outbox.enqueue(session, task, job_id=job.id)
    return len(jobs)


def kick_waiting_jobs(session: Session, file_id: str) -> int:
    """Jobs waiting for `file_id` to be validated: submit them now rather than at the next sweep."""
    waiting = session.scalars(
        select(JobRow).where(
            JobRow.status == Status.VALIDATING_FILES.value,
            JobRow.provider_job_id.is_(None),
            (JobRow.training_file == file_id) | (JobRow.validation_file == file_id),
        )
    ).all()
    for job in waiting:
        outbox.enqueue(session, TaskName.JOBS_SUBMIT, job_id=job.id)
    return len(waiting)
