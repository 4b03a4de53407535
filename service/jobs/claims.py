"""Claims with a lease: at most one worker submits a job, and at most one uploads a file to a
provider, at any moment, whatever the timing of the tasks that ask.

A claim is a token and an expiry written by one conditional UPDATE (or INSERT), so two workers can
never both win it, on SQLite or PostgreSQL. The holder renews it while it works (a `Heartbeat`
thread) and checks that it still holds it right before the one call that is not idempotent. A
worker that is killed stops renewing, and its claim expires after one lease: nothing waits on a
dead process for longer than that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db import session_scope
from service.files.models import ProviderFileRow
from service.ids import new_id
from service.jobs.models import JobRow
from service.jobs.states import TERMINAL

log = logging.getLogger(__name__)


class ClaimLost(Exception):
    """The lease ran out and another worker may hold the claim now: stop before acting."""


class UploadInProgress(Exception):
    """Another worker is uploading this file to this provider right now."""


def new_token() -> str:
    return new_id("claim_")


def _rows(result: object) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


def claim_job(session: Session, job_id: str, *, token: str, now: datetime, lease: timedelta) -> bool:
    """Take the submit claim of a job that has no provider job yet and is not final. The next sweep
    is due when the lease would run out, so a killed holder's job is picked up again then."""
    result = session.execute(
        update(JobRow)
        .where(
            JobRow.id == job_id,
            JobRow.provider_job_id.is_(None),
            JobRow.status.not_in([status.value for status in TERMINAL]),
            or_(JobRow.submit_claimed_until.is_(None), JobRow.submit_claimed_until <= now),
        )
        .values(submit_claim=token, submit_claimed_until=now + lease, next_refresh_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    return _rows(result) == 1


def renew_job(session: Session, job_id: str, *, token: str, now: datetime, lease: timedelta) -> bool:
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.submit_claim == token)
        .values(submit_claimed_until=now + lease, next_refresh_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    return _rows(result) == 1


def release_job(job: JobRow, *, token: str) -> None:
    """Give the claim up in the caller's transaction (a no-op when it is no longer ours)."""
    if job.submit_claim == token:
        job.submit_claim = None
        job.submit_claimed_until = None


@dataclass(frozen=True)
class UploadClaim:
    """Either the provider's copy exists (`provider_file_id`), or the upload is ours to make;
    `earlier_attempt_since` is set when an earlier upload may have reached the provider."""

    provider_file_id: str | None = None
    earlier_attempt_since: datetime | None = None


def claim_upload(
    sessions: sessionmaker[Session], file_id: str, provider: str, *, token: str, lease: timedelta
) -> UploadClaim:
    """Claim the upload of a file to a provider; raises UploadInProgress when another worker holds
    the claim."""
    now = utcnow()
    try:
        with session_scope(sessions) as session:
            row = session.get(ProviderFileRow, (file_id, provider))
            if row is not None and row.provider_file_id is not None:
                return UploadClaim(provider_file_id=row.provider_file_id)
            if row is None:
                session.add(
                    ProviderFileRow(
                        file_id=file_id,
                        provider=provider,
                        provider_file_id=None,
                        uploaded_at=now,
                        upload_claim=token,
                        upload_claimed_until=now + lease,
                    )
                )
                return UploadClaim()
    except IntegrityError:
        pass  # another worker inserted the row first: see below whether its claim still holds
    with session_scope(sessions) as session:
        taken = session.execute(
            update(ProviderFileRow)
            .where(
                ProviderFileRow.file_id == file_id,
                ProviderFileRow.provider == provider,
                ProviderFileRow.provider_file_id.is_(None),
                or_(
                    ProviderFileRow.upload_claimed_until.is_(None),
                    ProviderFileRow.upload_claimed_until <= now,
                ),
            )
            .values(upload_claim=token, upload_claimed_until=now + lease)
            .execution_options(synchronize_session=False)
        )
        row = session.get(ProviderFileRow, (file_id, provider))
        if _rows(taken) == 1 and row is not None:
            return UploadClaim(earlier_attempt_since=row.uploaded_at)
        if row is not None and row.provider_file_id is not None:
            return UploadClaim(provider_file_id=row.provider_file_id)
    raise UploadInProgress(f"file {file_id} is being uploaded to {provider} by another worker")


def renew_upload(
    session: Session, file_id: str, provider: str, *, token: str, now: datetime, lease: timedelta
) -> bool:
    result = session.execute(
        update(ProviderFileRow)
        .where(
            ProviderFileRow.file_id == file_id,
            ProviderFileRow.provider == provider,
            ProviderFileRow.upload_claim == token,
        )
        .values(upload_claimed_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return _rows(result) == 1


def finish_upload(
    sessions: sessionmaker[Session], file_id: str, provider: str, *, token: str, provider_file_id: str | None
) -> None:
    """Record the uploaded copy (None: the upload failed) and give the claim up."""
    with session_scope(sessions) as session:
        row = session.get(ProviderFileRow, (file_id, provider))
        if row is None or row.provider_file_id is not None:
            if provider_file_id is not None:
                log.warning(
                    "file %s: a second copy %s at %s is not tracked", file_id, provider_file_id, provider
                )
            return
        if provider_file_id is not None:
            row.provider_file_id = provider_file_id
            row.uploaded_at = utcnow()
        if row.upload_claim == token or provider_file_id is not None:
            row.upload_claim = None
            row.upload_claimed_until = None


class Heartbeat:
    """Renews a job's submit claim, and the upload claims taken under it, every third of the lease
    until stopped. `check()` renews at once and raises ClaimLost when the job claim is gone."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str, *, token: str, lease: timedelta) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._token = token
        self._lease = lease
        self._uploads: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._lost = False
        self._thread = threading.Thread(target=self._run, name=f"claim-{job_id}", daemon=True)

    def hold_upload(self, file_id: str, provider: str) -> None:
        with self._lock:
            self._uploads.add((file_id, provider))

    def drop_upload(self, file_id: str, provider: str) -> None:
        with self._lock:
            self._uploads.discard((file_id, provider))

    def _renew(self) -> bool:
        now = utcnow()
        with self._lock:
            uploads = list(self._uploads)
        with session_scope(self._sessions) as session:
            held = renew_job(session, self._job_id, token=self._token, now=now, lease=self._lease)
            for file_id, provider in uploads:
                renew_upload(session, file_id, provider, token=self._token, now=now, lease=self._lease)
        if not held:
            self._lost = True
        return held

    def check(self) -> None:
        if self._lost or not self._renew():
            raise ClaimLost(f"the submit claim of job {self._job_id} was lost")

    def _run(self) -> None:
        interval = self._lease.total_seconds() / 3
        while not self._stopped.wait(interval):
            try:
                if not self._renew():
                    log.warning("job %s: the submit claim was lost", self._job_id)
                    return
            except Exception:  # the database hiccuped: the next beat tries again
                log.exception("job %s: renewing the submit claim failed", self._job_id)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


@contextmanager
def heartbeat(
    sessions: sessionmaker[Session], job_id: str, *, token: str, lease: timedelta
) -> Iterator[Heartbeat]:
    beat = Heartbeat(sessions, job_id, token=token, lease=lease)
    beat.start()
    try:
        yield beat
    finally:
        beat.stop()
