"""What a provider says about a job (a `RemoteSnapshot`, fetched with no transaction open) and how
it is applied to our job in one short transaction: status, resolved hyperparameters, new events,
checkpoints, result files, and the fine-tuned model registered to the tenant.

Applying is idempotent: events, checkpoints and result files already recorded are skipped, looked
up inside the applying transaction, so a snapshot applied twice (a retry after a version conflict,
two workers) records everything once.

Applying is also cheap, as it runs for every active job several times a minute: a lookup is
skipped when the snapshot brings nothing of its kind (a refresh that brings nothing new writes the
job once), and the new events go in as one batched insert after one read of the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.blobs.store import BlobStore
from service.cache_changes import Change
from service.clock import utcnow
from service.deployments.promotion import promote_new_model
from service.evals import job_evaluations
from service.files.models import ProviderFileRow
from service.files.service import store_result_file
from service.ids import new_id
from service.jobs.access import ProviderAccess
from service.jobs.events import NewEvent, add_events, known_provider_event_ids, recorded_provider_events
from service.jobs.models import JobCheckpointRow, JobRow
from service.jobs.states import TERMINAL, Status
from service.jobs.transitions import transition
from service.models.catalog import base_model_of
from service.models.service import register_fine_tuned_model
from service.providers.fine_tuning import FineTuningProvider
from service.providers.types import RemoteCheckpoint, RemoteEvent, RemoteJob

log = logging.getLogger(__name__)


@dataclass
class RemoteSnapshot:
    """What the provider says about a job, fetched before any transaction is opened."""

    job: RemoteJob
    events: list[RemoteEvent] = field(default_factory=list)
    checkpoints: list[RemoteCheckpoint] = field(default_factory=list)
    result_files: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Known:
    """What we hold of a job already, so a fetch asks only for what is new."""

    events: frozenset[str] = frozenset()
    result_files: frozenset[str] = frozenset()

    @classmethod
    def of(cls, session: Session, job: JobRow) -> Known:
        return cls(
            frozenset(known_provider_event_ids(session, job.id)), frozenset(imported_results(session, job))
        )


def _from_unix(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def fetch_snapshot(provider: FineTuningProvider, remote: RemoteJob, known: Known) -> RemoteSnapshot:
    snapshot = RemoteSnapshot(job=remote)
    snapshot.events = provider.new_events(remote.id, set(known.events))
    snapshot.checkpoints = provider.checkpoints(remote.id)
    if remote.status == Status.SUCCEEDED.value:
        for file_id in remote.result_files:
            if file_id not in known.result_files:
                snapshot.result_files[file_id] = provider.file_content(file_id)
    return snapshot


def imported_results(session: Session, job: JobRow) -> set[str]:
    """The provider ids of the job's result files that we hold copies of."""
    if not job.result_files:
        return set()
    rows = session.scalars(
        select(ProviderFileRow).where(
            ProviderFileRow.file_id.in_(job.result_files), ProviderFileRow.provider == job.provider
        )
    )
    return {row.provider_file_id for row in rows if row.provider_file_id is not None}


def apply_snapshot(
    session: Session, job: JobRow, snapshot: RemoteSnapshot, access: ProviderAccess
) -> list[Change]:
    """Apply what the provider said; the routes this changed (a newly registered fine-tuned
    model, the deployments it promoted), which the caller announces once committed."""
    remote = snapshot.job
    routes_changed: list[str] = []
    now = utcnow()
    # The job is changed before anything is looked up: the first lookup flushes it as the
    # version-checked UPDATE, so a concurrent refresh that committed first is a StaleDataError here
    # (retried), not a duplicate event at insert.
    job.hyperparameters = {**job.hyperparameters, **remote.hyperparameters}
    job.trained_tokens = remote.trained_tokens or job.trained_tokens
    job.estimated_finish = _from_unix(remote.estimated_finish)
    job.updated_at = now
    news = _apply_events(session, job, snapshot.events)
    news += _apply_checkpoints(session, job, snapshot.checkpoints)
    _apply_result_files(session, job, snapshot.result_files, access.blobs)
    status_before = job.status
    try:
        status = Status(remote.status)
    except ValueError:
        log.warning("job %s: unknown provider status %r", job.id, remote.status)
        status = Status(job.status)
    if status == Status.SUCCEEDED and remote.fine_tuned_model:
        newly_succeeded = Status(job.status) != Status.SUCCEEDED
        job.fine_tuned_model = remote.fine_tuned_model
        register_fine_tuned_model(
            session,
            model=remote.fine_tuned_model,
            tenant_id=job.tenant_id,
            provider=job.provider,
            base_model=base_model_of(job.model),
            job_id=job.id,
        )
        if newly_succeeded:  # once: a snapshot applied again must not undo a rollback since
            routes_changed.append(remote.fine_tuned_model)
            evaluated = job_evaluations.schedule(  # queued only: the job's success waits for nothing
                session,
                tenant_id=job.tenant_id,
                job_id=job.id,
                base_model=job.model,
                fine_tuned_model=remote.fine_tuned_model,
                validation_file=job.validation_file,
                request=job.request,
            )
            routes_changed += promote_new_model(
                session,
                tenant_id=job.tenant_id,
                model=remote.fine_tuned_model,
                job_id=job.id,
                suffix=job.suffix,
                metadata=job.metadata_,
                evaluated=evaluated,
            )
    if status == Status.FAILED and Status(job.status) not in TERMINAL:
        job.error = remote.error or {
            "code": "provider_failed",
            "message": "The provider failed the job.",
            "param": None,
        }
    transition(session, job, status, now=now)
    if Status(job.status) not in TERMINAL:
        job.quiet_polls = 0 if news or job.status != status_before else job.quiet_polls + 1
        running = Status(job.status) == Status.RUNNING
        job.next_refresh_at = now + access.polls.delay(running=running, quiet_polls=job.quiet_polls)
    return [Change(tenant_id=job.tenant_id, model=name) for name in routes_changed]


def _apply_events(session: Session, job: JobRow, events: list[RemoteEvent]) -> int:
    """Record the events not seen before, in the provider's order; how many."""
    if not events:
        return 0
    known, last_seq = recorded_provider_events(session, job.id)
    fresh: list[NewEvent] = []
    for event in events:
        if event.id in known:
            continue
        known.add(event.id)
        fresh.append(
            NewEvent(
                event.message,
                level=event.level,
                type_=event.type,
                data=event.data,
                provider_event_id=event.id,
                created_at=_from_unix(event.created_at),
            )
        )
    add_events(session, job, fresh, last_seq=last_seq)
    return len(fresh)


def _apply_checkpoints(session: Session, job: JobRow, checkpoints: list[RemoteCheckpoint]) -> int:
    """Record the checkpoints not seen before; how many."""
    if not checkpoints:
        return 0
    known = set(
        session.scalars(
            select(JobCheckpointRow.provider_checkpoint_id).where(JobCheckpointRow.job_id == job.id)
        )
    )
    fresh = [checkpoint for checkpoint in checkpoints if checkpoint.id not in known]
    for checkpoint in fresh:
        session.add(
            JobCheckpointRow(
                id=new_id("ftckpt_"),
                job_id=job.id,
                provider_checkpoint_id=checkpoint.id,
                created_at=_from_unix(checkpoint.created_at) or utcnow(),
                fine_tuned_model_checkpoint=checkpoint.fine_tuned_model_checkpoint,
                step_number=checkpoint.step_number,
                metrics=checkpoint.metrics,
            )
        )
    return len(fresh)


def _apply_result_files(session: Session, job: JobRow, contents: dict[str, bytes], blobs: BlobStore) -> None:
    if not contents:
        return
    held = imported_results(session, job)
    for provider_file_id, content in contents.items():
        if provider_file_id in held:
            continue
        row = store_result_file(
            session, blobs, tenant_id=job.tenant_id, filename=f"{job.id}-results.csv", content=content
        )
        session.add(ProviderFileRow(file_id=row.id, provider=job.provider, provider_file_id=provider_file_id))
        job.result_files = [*job.result_files, row.id]
