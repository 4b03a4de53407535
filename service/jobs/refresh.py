"""Following jobs: the sweep that finds the ones due, and the refresh that brings one up to date
with its provider job. Provider calls happen with no transaction open; the answer is applied in one
short transaction (`service.jobs.snapshots`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from service.cache_changes import Change
from service.clock import utcnow
from service.db import is_postgres, session_scope
from service.jobs.access import RETRY_AFTER_CAP, ProviderAccess
from service.jobs.accounts import CredentialsDeleted, fail_unreachable, job_credentials
from service.jobs.models import JobRow
from service.jobs.snapshots import Known, apply_snapshot, fetch_snapshot
from service.jobs.states import ACTIVE, TERMINAL, Status
from service.jobs.transitions import transition
from service.outbox import service as outbox
from service.providers.errors import ProviderRejected, ProviderUnavailable
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
        try:
            credentials = job_credentials(session, job, access.providers.cipher)
        except CredentialsDeleted:
            fail_unreachable(session, job)
            log.warning("job %s: its tenant's provider credentials were deleted; failed", job_id)
            return True
    provider = access.providers.fine_tuning(provider_name, credentials)
    try:
        snapshot = fetch_snapshot(provider, provider.retrieve_job(provider_job_id), known)
    except ProviderUnavailable as error:
        _postpone(sessions, job_id, access, error)
        raise
    except ProviderRejected as error:
        if error.status_code != 404:
            _postpone(sessions, job_id, access, error)
            raise
        _lost(sessions, job_id, provider_job_id)
        return True
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


def _postpone(
    sessions: sessionmaker[Session],
    job_id: str,
    access: ProviderAccess,
    error: ProviderUnavailable | ProviderRejected,
) -> None:
    """The provider could not answer (or refused our credentials): look again later, backing off
    like a quiet poll (and never sooner than its Retry-After), the job otherwise untouched."""
    retry_after = getattr(error, "retry_after_s", None)
    with session_scope(sessions) as session:
        job = session.get(JobRow, job_id)
        if job is None or Status(job.status) in TERMINAL:
            return
        job.quiet_polls += 1
        delay = access.polls.delay(running=job.status == Status.RUNNING.value, quiet_polls=job.quiet_polls)
        if retry_after:
            delay = max(delay, min(timedelta(seconds=retry_after), RETRY_AFTER_CAP))
        job.next_refresh_at = utcnow() + delay
    log.warning("job %s: provider trouble (%s); next refresh in %s", job_id, error.message, delay)


def _lost(sessions: sessionmaker[Session], job_id: str, provider_job_id: str) -> None:
    """The provider no longer knows the job (404): it fails, saying so."""
    with session_scope(sessions) as session:
        job = session.get(JobRow, job_id)
        if job is None or Status(job.status) in TERMINAL:
            return
        job.error = {
            "code": "provider_job_not_found",
            "message": f"The provider no longer knows this job's provider job {provider_job_id}.",
            "param": None,
        }
        transition(session, job, Status.FAILED)
    log.warning("job %s: the provider no longer knows %s; failed", job_id, provider_job_id)


def sweep(
    session: Session,
    *,
    now: datetime | None = None,
    batch_size: int = 500,
    ahead: timedelta = timedelta(0),
) -> int:
    """Queue a submit or refresh for every active job that is due, leasing it for a minute so the
    next sweep does not queue it again while the task is pending. A job whose submit is claimed
    is left alone until the claim's lease runs out. With `ahead` (half the sweep's period, from
    beat), a job due before the middle of the coming period is taken now rather than a whole
    period late: a job polled every period is refreshed every period, not every two.

    The due jobs are claimed by one UPDATE … RETURNING, so two sweepers at once never both take a
    job: on PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED` (a second sweeper takes the
    next ones), and SQLite runs one writing statement at a time. The work is the due jobs, found
    by the `(status, next_refresh_at)` index, not every active one."""
    now = now or utcnow()
    due = (
        select(JobRow.id)
        .where(
            JobRow.status.in_([status.value for status in ACTIVE]),
            JobRow.next_refresh_at <= now + ahead,
            or_(JobRow.submit_claimed_until.is_(None), JobRow.submit_claimed_until <= now),
        )
        .order_by(JobRow.next_refresh_at)
        .limit(batch_size)
    )
    if is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    claimed = session.execute(
        update(JobRow)
        .where(JobRow.id.in_(due.scalar_subquery()))
        .values(next_refresh_at=now + SWEEP_LEASE, version=JobRow.version + 1)
        .returning(JobRow.id, JobRow.provider_job_id)
        .execution_options(synchronize_session=False)
    ).all()
    for job_id, provider_job_id in claimed:
        task = TaskName.JOBS_REFRESH if provider_job_id else TaskName.JOBS_SUBMIT
        outbox.enqueue(session, task, job_id=job_id)
    return len(claimed)


def sweep_all(
    sessions: sessionmaker[Session],
    *,
    ahead: timedelta = timedelta(0),
    batch_size: int = 500,
    max_batches: int = 40,
) -> int:
    """Sweep batch after batch, each in its own short transaction, while a batch comes back full:
    with more due jobs than one batch holds (1,000 running jobs against 500 a batch), one beat
    tick still queues every due job instead of leaving the rest a whole period late. At most
    `max_batches` per tick, so one tick's work stays bounded; what is left waits for the next."""
    total = 0
    for _ in range(max_batches):
        with session_scope(sessions) as session:
            claimed = sweep(session, ahead=ahead, batch_size=batch_size)
        total += claimed
        if claimed < batch_size:
            break
    return total


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
