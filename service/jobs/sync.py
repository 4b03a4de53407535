"""Keeping our jobs in step with the provider: refresh, sweep, and the transitions they make.

(Submitting a job is `service.jobs.submission`.) Provider calls happen outside database
transactions; what they return is applied in one transaction, together with the webhook event of a
final status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db import is_postgres, session_scope
from service.files.models import ProviderFileRow
from service.files.service import store_result_file
from service.ids import new_id
from service.jobs.access import ProviderAccess
from service.jobs.events import add_event, known_provider_event_ids
from service.jobs.models import JobCheckpointRow, JobRow
from service.jobs.states import ACTIVE, TERMINAL, WEBHOOK_EVENT, Status, can_transition
from service.models.catalog import base_model_of
from service.models.service import register_fine_tuned_model
from service.outbox import service as outbox
from service.providers.fine_tuning import FineTuningProvider
from service.tasks import TaskName
from service.webhooks.service import emit_event

log = logging.getLogger(__name__)

SWEEP_LEASE = timedelta(seconds=60)


def _from_unix(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def transition(session: Session, job: JobRow, new: Status, *, now: datetime | None = None) -> bool:
    """Move `job` to `new` if the state machine allows it; a final status emits its webhook event
    in the same transaction. Returns whether the status changed."""
    current = Status(job.status)
    if current == new or not can_transition(current, new):
        if current != new:
            log.info("job %s: ignoring %s -> %s", job.id, current, new)
        return False
    now = now or utcnow()
    job.status = new.value
    job.updated_at = now
    if new in TERMINAL:
        job.finished_at = job.finished_at or now
        job.next_refresh_at = None
    if new in WEBHOOK_EVENT:
        emit_event(session, tenant_id=job.tenant_id, type=WEBHOOK_EVENT[new], data_id=job.id)
    return True


def fail(session: Session, job: JobRow, *, code: str, message: str, param: str | None) -> None:
    job.error = {"code": code, "message": message, "param": param}
    if transition(session, job, Status.FAILED):
        add_event(session, job, f"Fine-tuning job failed: {message}", level="error")


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


# --- refresh ----------------------------------------------------------------------------------


@dataclass
class RemoteSnapshot:
    """What the provider says about a job, fetched before any transaction is opened."""

    job: FineTuningJob
    events: list[FineTuningJobEvent] = field(default_factory=list)
    checkpoints: list[FineTuningJobCheckpoint] = field(default_factory=list)
    result_files: dict[str, bytes] = field(default_factory=dict)


def fetch_snapshot(
    provider: FineTuningProvider, remote: FineTuningJob, *, known_events: set[str], imported_results: set[str]
) -> RemoteSnapshot:
    snapshot = RemoteSnapshot(job=remote)
    snapshot.events = provider.new_events(remote.id, known_events)
    snapshot.checkpoints = provider.checkpoints(remote.id)
    if remote.status == Status.SUCCEEDED.value:
        for file_id in remote.result_files:
            if file_id not in imported_results:
                snapshot.result_files[file_id] = provider.file_content(file_id)
    return snapshot


def _imported_results(session: Session, job: JobRow) -> set[str]:
    if not job.result_files:
        return set()
    rows = session.scalars(
        select(ProviderFileRow).where(
            ProviderFileRow.file_id.in_(job.result_files), ProviderFileRow.provider == job.provider
        )
    )
    return {row.provider_file_id for row in rows if row.provider_file_id is not None}


def apply_snapshot(session: Session, job: JobRow, snapshot: RemoteSnapshot, access: ProviderAccess) -> None:
    remote = snapshot.job
    now = utcnow()
    resolved = {key: value for key, value in remote.hyperparameters.model_dump().items() if value is not None}
    job.hyperparameters = {**job.hyperparameters, **resolved}
    job.trained_tokens = remote.trained_tokens or job.trained_tokens
    job.estimated_finish = _from_unix(remote.estimated_finish)
    job.updated_at = now
    for event in snapshot.events:
        add_event(
            session,
            job,
            event.message,
            level=event.level,
            type_=event.type or "message",
            data=event.data if isinstance(event.data, dict) else None,
            provider_event_id=event.id,
            created_at=_from_unix(event.created_at),
        )
    _apply_checkpoints(session, job, snapshot.checkpoints)
    for provider_file_id, content in snapshot.result_files.items():
        row = store_result_file(
            session, access.blobs, tenant_id=job.tenant_id, filename=f"{job.id}-results.csv", content=content
        )
        session.add(ProviderFileRow(file_id=row.id, provider=job.provider, provider_file_id=provider_file_id))
        job.result_files = [*job.result_files, row.id]
    try:
        status = Status(remote.status)
    except ValueError:
        log.warning("job %s: unknown provider status %r", job.id, remote.status)
        status = Status(job.status)
    if status == Status.SUCCEEDED and remote.fine_tuned_model:
        job.fine_tuned_model = remote.fine_tuned_model
        register_fine_tuned_model(
            session,
            model=remote.fine_tuned_model,
            tenant_id=job.tenant_id,
            provider=job.provider,
            base_model=base_model_of(job.model),
            job_id=job.id,
        )
    if status == Status.FAILED:
        job.error = (
            remote.error.model_dump()
            if remote.error
            else {"code": "provider_failed", "message": "The provider failed the job.", "param": None}
        )
    transition(session, job, status, now=now)
    if Status(job.status) not in TERMINAL:
        job.next_refresh_at = now + access.refresh_every


def _apply_checkpoints(session: Session, job: JobRow, checkpoints: list[FineTuningJobCheckpoint]) -> None:
    known = set(
        session.scalars(
            select(JobCheckpointRow.provider_checkpoint_id).where(JobCheckpointRow.job_id == job.id)
        )
    )
    for checkpoint in checkpoints:
        if checkpoint.id in known:
            continue
        session.add(
            JobCheckpointRow(
                id=new_id("ftckpt_"),
                job_id=job.id,
                provider_checkpoint_id=checkpoint.id,
                created_at=_from_unix(checkpoint.created_at) or utcnow(),
                fine_tuned_model_checkpoint=checkpoint.fine_tuned_model_checkpoint,
                step_number=checkpoint.step_number,
                metrics=checkpoint.metrics.model_dump(),
            )
        )


def refresh(sessions: sessionmaker[Session], job_id: str, access: ProviderAccess) -> None:
    """Bring one job up to date with its provider job (idempotent)."""
    with session_scope(sessions) as session:
        job = session.get(JobRow, job_id)
        if job is None or job.provider_job_id is None or Status(job.status) in TERMINAL:
            return
        provider_name, provider_job_id = job.provider, job.provider_job_id
        known = known_provider_event_ids(session, job_id)
        imported = _imported_results(session, job)
    provider = access.providers.fine_tuning(provider_name)
    snapshot = fetch_snapshot(
        provider, provider.retrieve_job(provider_job_id), known_events=known, imported_results=imported
    )
    with session_scope(sessions) as session:
        job = session.get(JobRow, job_id)
        if job is not None and Status(job.status) not in TERMINAL:
            apply_snapshot(session, job, snapshot, access)


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


def apply_remote(
    session: Session,
    job: JobRow,
    remote: FineTuningJob,
    *,
    provider: FineTuningProvider,
    access: ProviderAccess,
) -> None:
    """Apply a provider job the caller already has (cancel/pause/resume answers)."""
    snapshot = fetch_snapshot(
        provider,
        remote,
        known_events=known_provider_event_ids(session, job.id),
        imported_results=_imported_results(session, job),
    )
    apply_snapshot(session, job, snapshot, access)
