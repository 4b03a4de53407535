"""Cancel, pause and resume a job.

The provider is asked with no database transaction open; its answer is applied in a short one. A
refresh that changes the job meanwhile makes that transaction lose its optimistic version check:
it is tried again on the fresh row, and after `ATTEMPTS` losses the caller gets a 409 (the provider
has acted by then, and the next refresh records it). Never a 500.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from service.db import session_scope
from service.errors import Conflict, InvalidRequest
from service.jobs.access import ProviderAccess
from service.jobs.accounts import CredentialsDeleted, job_credentials, unreachable
from service.jobs.events import add_event
from service.jobs.models import JobRow
from service.jobs.service import get_job
from service.jobs.snapshots import Known, apply_snapshot, fetch_snapshot
from service.jobs.states import TERMINAL, Status
from service.jobs.transitions import transition
from service.providers.fine_tuning import FineTuningProvider
from service.providers.types import RemoteJob

ATTEMPTS = 3
Action = Callable[[FineTuningProvider, str], RemoteJob]


def _conflict(job_id: str) -> Conflict:
    return Conflict(
        f"Job {job_id} changed while this request was applied to it; retrieve it and try again.",
        param="fine_tuning_job_id",
        code="job_changed",
    )


def _load(sessions: sessionmaker[Session], tenant_id: str, job_id: str) -> tuple[JobRow, Known]:
    with session_scope(sessions) as session:
        job = get_job(session, tenant_id=tenant_id, job_id=job_id)
        return job, Known.of(session, job)


def _at_provider(
    sessions: sessionmaker[Session], job: JobRow, known: Known, access: ProviderAccess, action: Action
) -> JobRow:
    assert job.provider_job_id is not None
    with session_scope(sessions) as session:
        try:
            credentials = job_credentials(session, job, access.providers.cipher)
        except CredentialsDeleted:
            raise unreachable(job) from None
    provider = access.providers.fine_tuning(job.provider, credentials)
    snapshot = fetch_snapshot(provider, action(provider, job.provider_job_id), known)
    for _ in range(ATTEMPTS):
        try:
            with session_scope(sessions) as session:
                row = session.get_one(JobRow, job.id)
                apply_snapshot(session, row, snapshot, access)
                return row
        except StaleDataError:
            continue
    raise _conflict(job.id)


def cancel_job(
    sessions: sessionmaker[Session], *, tenant_id: str, job_id: str, access: ProviderAccess
) -> JobRow:
    for _ in range(ATTEMPTS):
        job, known = _load(sessions, tenant_id, job_id)
        if Status(job.status) in TERMINAL:
            raise InvalidRequest(
                f"Job {job.id} has already {job.status}; it cannot be cancelled.", param="fine_tuning_job_id"
            )
        if job.provider_job_id is not None:
            return _at_provider(sessions, job, known, access, lambda p, remote_id: p.cancel_job(remote_id))
        try:
            with session_scope(sessions) as session:
                row = session.get_one(JobRow, job_id)
                if row.provider_job_id is not None:
                    continue  # a submit recorded its provider job meanwhile: cancel that one
                if transition(session, row, Status.CANCELLED):
                    add_event(session, row, "Fine-tuning job cancelled")
                return row
        except StaleDataError:
            continue
    raise _conflict(job_id)


def _from_state(
    sessions: sessionmaker[Session],
    tenant_id: str,
    job_id: str,
    access: ProviderAccess,
    *,
    needs: Status,
    verb: str,
    action: Action,
) -> JobRow:
    job, known = _load(sessions, tenant_id, job_id)
    if job.status != needs or job.provider_job_id is None:
        raise InvalidRequest(
            f"Only a {needs} job can be {verb}; job {job.id} is {job.status}.", param="fine_tuning_job_id"
        )
    return _at_provider(sessions, job, known, access, action)


def pause_job(
    sessions: sessionmaker[Session], *, tenant_id: str, job_id: str, access: ProviderAccess
) -> JobRow:
    return _from_state(
        sessions,
        tenant_id,
        job_id,
        access,
        needs=Status.RUNNING,
        verb="paused",
        action=lambda p, r: p.pause_job(r),
    )


def resume_job(
    sessions: sessionmaker[Session], *, tenant_id: str, job_id: str, access: ProviderAccess
) -> JobRow:
    return _from_state(
        sessions,
        tenant_id,
        job_id,
        access,
        needs=Status.PAUSED,
        verb="resumed",
        action=lambda p, r: p.resume_job(r),
    )
