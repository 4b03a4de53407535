"""Submitting a job: upload its files to the provider and create the provider job, exactly once.

Creating the provider job is the one call that is not idempotent, and an upload costs storage. So:

- our job is committed first, and one worker at a time holds its submit claim
  (`service.jobs.claims`): only the holder uploads and creates; a submit that finds the job claimed
  leaves it alone, and the sweep does not queue one;
- each attempt is counted before any call; the SDK's retries are off; our id travels in the
  provider job's metadata and ours in the uploaded file's name, and every attempt after an unclear
  outcome (a lost answer, a killed worker) looks them up before creating again, adopting what it
  finds;
- a failed attempt is tried again by the sweep after a backoff. After the policy's last attempt the
  job only looks for what earlier attempts may have created; it fails, with an error that says why,
  once it knows nothing was created (or after as many more tries). An error no retry can fix fails
  the job at once.

Provider calls happen outside database transactions; each answer is applied in a short one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.clock import to_unix, utcnow
from service.db import session_scope
from service.files.encodings import report_for_model
from service.files.models import FileRow, FileStatus
from service.jobs import budgets, claims
from service.jobs.access import ProviderAccess
from service.jobs.accounts import CredentialsDeleted, fail_unreachable, job_credentials
from service.jobs.costs import job_cost
from service.jobs.datasets import format_misfit
from service.jobs.events import add_event
from service.jobs.models import JobRow
from service.jobs.snapshots import RemoteSnapshot, apply_snapshot
from service.jobs.states import TERMINAL, Status
from service.jobs.transitions import fail
from service.models.catalog import BASE_MODELS, base_model_of
from service.providers.credentials import ProviderCredentials
from service.providers.errors import ProviderRejected, ProviderUnavailable
from service.providers.fine_tuning import FTM_JOB_ID, FineTuningProvider
from service.providers.types import RemoteJob

log = logging.getLogger(__name__)

FILES_PENDING_RETRY = timedelta(seconds=2)
UPLOAD_BUSY_RETRY = timedelta(seconds=2)
CLOCK_SKEW = timedelta(minutes=10)
LAST_ERROR = "last_submit_error"
PROVIDER_FILENAME_LIMIT = 255


class SubmitOutcome(StrEnum):
    SUBMITTED = "submitted"  # the provider job exists and is recorded
    NOT_NEEDED = "not_needed"  # the job is gone, final, or submitted already
    CLAIMED = "claimed"  # another worker is submitting it
    WAITING = "waiting"  # a file is not validated yet, or another worker is uploading it
    RETRY = "retry"  # this attempt failed; the sweep tries again after a backoff
    FAILED = "failed"  # the job failed


def _files_ready(session: Session, job: JobRow, access: ProviderAccess) -> dict[str, FileRow] | None:
    """The job's files when all are processed; None when it must wait or has failed."""
    files: dict[str, FileRow] = {}
    for param, file_id in (("training_file", job.training_file), ("validation_file", job.validation_file)):
        if file_id is None:
            continue
        row = session.get(FileRow, file_id)
        if row is None:
            fail(session, job, code=f"invalid_{param}", message=f"File {file_id} was deleted.", param=param)
            return None
        if row.status == FileStatus.ERROR:
            fail(
                session, job, code=f"invalid_{param}", message=f"{file_id}: {row.status_details}", param=param
            )
            return None
        if row.status != FileStatus.PROCESSED:
            job.next_refresh_at = utcnow() + FILES_PENDING_RETRY
            return None
        misfit = format_misfit(
            job.model, (job.method or {}).get("type", "supervised"), (row.report or {}).get("format")
        )
        if misfit is not None:
            fail(session, job, code=f"invalid_{param}", message=f"{file_id}: {misfit}", param=param)
            return None
        if row.redacted_file_id is not None:
            message = f"{file_id} holds personal data; train on its redacted copy {row.redacted_file_id}."
            fail(session, job, code=f"invalid_{param}", message=message, param=param)
            return None
        files[param] = row
    if job.estimated_cost_usd is None and not _within_budget(session, job, files["training_file"], access):
        return None
    return files


def _within_budget(session: Session, job: JobRow, training: FileRow, access: ProviderAccess) -> bool:
    """A job created before its file was validated is checked against its tenant's budget now,
    before anything is uploaded; over budget, it fails (`service.jobs.budgets`)."""
    base = base_model_of(job.model)
    if base not in BASE_MODELS:
        return True
    report = report_for_model(session, access.blobs, training, base)
    if report is None:
        return True
    cost = job_cost(report, base, job.hyperparameters.get("n_epochs", "auto"), access.training_prices)
    budget = budgets.budget_of(session, job.tenant_id, job.created_at, lock=True)
    reason = budget.refusal(cost) if budget is not None and cost is not None else None
    if reason is not None:
        fail(session, job, code=budgets.BUDGET_EXCEEDED, message=reason, param="training_file")
        return False
    job.estimated_cost_usd = cost
    return True


def provider_filename(file: FileRow) -> str:
    """The name a file gets at the provider: ours first, so a lost upload can be found again."""
    return f"{file.id}-{file.filename}"[:PROVIDER_FILENAME_LIMIT]


def _upload_once(
    sessions: sessionmaker[Session],
    access: ProviderAccess,
    provider: FineTuningProvider,
    file: FileRow,
    beat: claims.Heartbeat,
    token: str,
) -> str:
    account = provider.account  # a copy in the operator's account is not one in the tenant's
    claim = claims.claim_upload(sessions, file.id, account, token=token, lease=access.submit.lease)
    if claim.provider_file_id is not None:
        return claim.provider_file_id
    beat.hold_upload(file.id, account)
    name = provider_filename(file)
    uploaded: str | None = None
    try:
        if claim.earlier_attempt_since is not None:
            since = to_unix(claim.earlier_attempt_since - CLOCK_SKEW) or 0
            uploaded = provider.find_file(name, created_since=since)
        if uploaded is None:
            with access.blobs.open(file.blob_key) as body:
                uploaded = provider.upload_file(name, body)
    finally:
        beat.drop_upload(file.id, account)
        claims.finish_upload(sessions, file.id, account, token=token, provider_file_id=uploaded)
    return uploaded


def _create_params(job: JobRow, provider_files: dict[str, str]) -> dict[str, Any]:
    method = dict(job.method or {"type": "supervised"})
    section = dict(method.get(method["type"]) or {})
    section.setdefault("hyperparameters", job.hyperparameters)
    method[method["type"]] = section
    params: dict[str, Any] = {"model": job.model, "seed": job.seed, "method": method, **provider_files}
    if job.suffix:
        params["suffix"] = job.suffix
    if job.metadata_:
        params["metadata"] = dict(job.metadata_)
    if job.provider_state and job.provider_state.get("integrations"):
        params["integrations"] = job.provider_state["integrations"]
    return params


@dataclass(frozen=True)
class _Attempt:
    job: JobRow  # as it was when claimed (detached)
    number: int
    files: dict[str, FileRow]
    credentials: ProviderCredentials | None  # the tenant's own, which the job was created with


def _claim(
    sessions: sessionmaker[Session], job_id: str, token: str, access: ProviderAccess
) -> _Attempt | SubmitOutcome:
    """Claim the job and count the attempt, or say why there is nothing to do."""
    with session_scope(sessions) as session:
        claimed = claims.claim_job(session, job_id, token=token, now=utcnow(), lease=access.submit.lease)
        job = session.get(JobRow, job_id)
        if job is None or job.provider_job_id is not None or Status(job.status) in TERMINAL:
            return SubmitOutcome.NOT_NEEDED
        if not claimed:
            return SubmitOutcome.CLAIMED
        try:
            credentials = job_credentials(session, job, access.providers.cipher)
        except CredentialsDeleted:
            claims.release_job(job, token=token)
            fail_unreachable(session, job)
            return SubmitOutcome.FAILED
        files = _files_ready(session, job, access)
        if files is None:
            claims.release_job(job, token=token)
            return SubmitOutcome.FAILED if job.status == Status.FAILED else SubmitOutcome.WAITING
        if job.submit_attempts >= 2 * access.submit.max_attempts:
            claims.release_job(job, token=token)
            _give_up(session, job, access, confirmed=False)
            return SubmitOutcome.FAILED
        job.submit_attempts += 1
        return _Attempt(job, job.submit_attempts, files, credentials)


def submit(sessions: sessionmaker[Session], job_id: str, access: ProviderAccess) -> SubmitOutcome:
    """One submit attempt for `job_id`, unless another worker is making one (idempotent)."""
    token = claims.new_token()
    attempt = _claim(sessions, job_id, token, access)
    if isinstance(attempt, SubmitOutcome):
        return attempt
    lookup_only = attempt.number > access.submit.max_attempts
    provider = access.providers.fine_tuning(attempt.job.provider, attempt.credentials)
    try:
        with claims.heartbeat(sessions, job_id, token=token, lease=access.submit.lease) as beat:
            remote = provider.find_job(job_id) if attempt.number > 1 else None
            if remote is None and lookup_only:
                with session_scope(sessions) as session:
                    job = _reload(session, job_id, token)
                    _give_up(session, job, access, confirmed=True)
                return SubmitOutcome.FAILED
            if remote is None:
                provider_files = {
                    param: _upload_once(sessions, access, provider, row, beat, token)
                    for param, row in attempt.files.items()
                }
                beat.check()
                remote = provider.create_job(job_id, _create_params(attempt.job, provider_files))
    except claims.ClaimLost:
        log.warning("job %s: the submit claim ran out mid-attempt; its new holder goes on", job_id)
        return SubmitOutcome.CLAIMED
    except claims.UploadInProgress:
        with session_scope(sessions) as session:
            job = _reload(session, job_id, token)
            job.submit_attempts -= 1  # waiting for another job's upload is not a failed attempt
            job.next_refresh_at = utcnow() + UPLOAD_BUSY_RETRY
        return SubmitOutcome.WAITING
    except ProviderRejected as rejected:
        with session_scope(sessions) as session:
            job = _reload(session, job_id, token)
            code = rejected.code or "provider_rejected"
            fail(session, job, code=code, message=rejected.message, param=rejected.param)
        return SubmitOutcome.FAILED
    except ProviderUnavailable as error:
        return _attempt_failed(sessions, job_id, token, access, attempt, error.message, error.retry_after_s)
    except Exception as error:
        reason = f"an internal error ({type(error).__name__})"
        _attempt_failed(sessions, job_id, token, access, attempt, reason, None)
        raise
    return _record(sessions, job_id, token, access, provider, remote)


def _reload(session: Session, job_id: str, token: str) -> JobRow:
    """The job, fresh, with this attempt's claim given up in the caller's transaction."""
    job = session.get(JobRow, job_id)
    assert job is not None  # jobs are never deleted, only failed or cancelled
    claims.release_job(job, token=token)
    return job


def _attempt_failed(
    sessions: sessionmaker[Session],
    job_id: str,
    token: str,
    access: ProviderAccess,
    attempt: _Attempt,
    reason: str,
    retry_after_s: float | None,
) -> SubmitOutcome:
    policy = access.submit
    with session_scope(sessions) as session:
        job = _reload(session, job_id, token)
        if job.provider_job_id is not None or Status(job.status) in TERMINAL:
            return SubmitOutcome.NOT_NEEDED
        job.provider_state = {**(job.provider_state or {}), LAST_ERROR: reason}
        if attempt.number >= 2 * policy.max_attempts:
            _give_up(session, job, access, confirmed=False)
            return SubmitOutcome.FAILED
        delay = policy.retry_delay(attempt.number, retry_after_s)
        job.next_refresh_at = utcnow() + delay
        add_event(
            session,
            job,
            f"Submit attempt {attempt.number} failed: {reason}. "
            f"Trying again in {delay.total_seconds():.0f} s.",
            level="warn",
        )
    log.warning(
        "jobs.submit %s: attempt %d failed (%s); retrying in %s", job_id, attempt.number, reason, delay
    )
    return SubmitOutcome.RETRY


def _give_up(session: Session, job: JobRow, access: ProviderAccess, *, confirmed: bool) -> None:
    """Fail a job that could not be submitted. `confirmed`: the provider was just asked and holds
    no job of ours, so nothing trains untracked."""
    attempts = access.submit.max_attempts
    last = (job.provider_state or {}).get(LAST_ERROR)
    if not confirmed:
        message = (
            f"The job could not be submitted to provider '{job.provider}' ({last or 'no attempt finished'}), "
            "and whether an earlier attempt created a provider job could not be confirmed; look for a "
            f"provider job with metadata {FTM_JOB_ID}={job.id}."
        )
        fail(session, job, code="submit_attempts_exhausted", message=message, param=None)
    elif last is None:
        message = (
            f"The job could not be submitted to provider '{job.provider}': {attempts} attempts stopped "
            "before they finished (the worker running them was lost each time)."
        )
        fail(session, job, code="worker_crash_loop", message=message, param=None)
    else:
        message = (
            f"The job could not be submitted to provider '{job.provider}' in {attempts} attempts; "
            f"the last one failed with: {last}"
        )
        fail(session, job, code="submit_attempts_exhausted", message=message, param=None)


def _record(
    sessions: sessionmaker[Session],
    job_id: str,
    token: str,
    access: ProviderAccess,
    provider: FineTuningProvider,
    remote: RemoteJob,
) -> SubmitOutcome:
    """Keep the provider job's id (the next refresh imports its events and checkpoints); cancel it
    at the provider when our job was cancelled meanwhile."""
    with session_scope(sessions) as session:
        job = _reload(session, job_id, token)
        if job.provider_job_id is not None and job.provider_job_id != remote.id:
            log.error(
                "job %s: provider job %s is a second one; %s is kept", job_id, remote.id, job.provider_job_id
            )
            return SubmitOutcome.NOT_NEEDED
        job.provider_job_id = remote.id
        add_event(session, job, f"Submitted to provider '{provider.name}' as {remote.id}")
        apply_snapshot(session, job, RemoteSnapshot(job=remote), access)
        cancelled_meanwhile = Status(job.status) == Status.CANCELLED and remote.status not in TERMINAL
    if cancelled_meanwhile:
        try:
            provider.cancel_job(remote.id)
        except (ProviderUnavailable, ProviderRejected):
            log.warning("job %s was cancelled while submitting; cancelling %s failed", job_id, remote.id)
    return SubmitOutcome.SUBMITTED
