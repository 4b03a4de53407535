"""Fine-tuning jobs, as the API sees them: create, read, list, events, checkpoints.

Creating a job only writes our row and an outbox entry (`jobs.submit`) in one transaction; workers
upload the files and create the provider job (`service.jobs.submission`). Cancel, pause and resume
are `service.jobs.control`.
"""

from __future__ import annotations

import secrets
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.auth.service import Principal
from service.clock import utcnow
from service.errors import InvalidRequest, NotFound
from service.files.models import FileRow
from service.ids import new_id
from service.jobs.events import add_event
from service.jobs.models import JobCheckpointRow, JobEventRow, JobRow
from service.jobs.refresh import SWEEP_LEASE
from service.jobs.schemas import JobCreate
from service.jobs.states import Status
from service.models.catalog import BASE_MODELS
from service.models.service import owned_fine_tuned_model
from service.outbox import service as outbox
from service.providers.registry import ProviderRegistry
from service.tasks import TaskName

DEFAULT_HYPERPARAMETERS = {"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"}


def job_not_found(job_id: str) -> NotFound:
    return NotFound(
        f"No fine-tuning job found with id '{job_id}'.", param="fine_tuning_job_id", code="job_not_found"
    )


def get_job(session: Session, *, tenant_id: str, job_id: str) -> JobRow:
    row = session.get(JobRow, job_id)
    if row is None or row.tenant_id != tenant_id:
        raise job_not_found(job_id)
    return row


def _check_file(session: Session, tenant_id: str, file_id: str, param: str) -> FileRow:
    row = session.get(FileRow, file_id)
    if row is None or row.tenant_id != tenant_id:
        raise InvalidRequest(f"File '{file_id}' does not exist.", param=param, code="file_not_found")
    if row.purpose != "fine-tune":
        raise InvalidRequest(f"File '{file_id}' has purpose '{row.purpose}', not 'fine-tune'.", param=param)
    if row.status == "error":
        raise InvalidRequest(
            f"File '{file_id}' is invalid: {row.status_details}", param=param, code="invalid_file"
        )
    return row


def _hyperparameters(request: JobCreate) -> dict[str, Any]:
    chosen = request.hyperparameters
    if request.method is not None:
        section = getattr(request.method, request.method.type)
        chosen = section.hyperparameters if section is not None else None
    given = chosen.model_dump(exclude_none=True) if chosen is not None else {}
    return {**DEFAULT_HYPERPARAMETERS, **given}


def create_job(
    session: Session, request: JobCreate, *, caller: Principal, providers: ProviderRegistry
) -> JobRow:
    if request.model in BASE_MODELS:
        provider = providers.default
    elif request.model.startswith("ft:"):
        provider = owned_fine_tuned_model(session, tenant_id=caller.tenant_id, model=request.model).provider
    else:
        known = ", ".join(BASE_MODELS)
        raise InvalidRequest(
            f"Model '{request.model}' cannot be fine-tuned; choose one of {known}, or a fine-tuned model of yours.",
            param="model",
            code="model_not_available",
        )
    providers.config(provider)
    _check_file(session, caller.tenant_id, request.training_file, "training_file")
    if request.validation_file is not None:
        if request.validation_file == request.training_file:
            raise InvalidRequest(
                "The validation file must differ from the training file.", param="validation_file"
            )
        _check_file(session, caller.tenant_id, request.validation_file, "validation_file")
    now = utcnow()
    job = JobRow(
        id=new_id("ftjob-"),
        tenant_id=caller.tenant_id,
        provider=provider,
        model=request.model,
        training_file=request.training_file,
        validation_file=request.validation_file,
        hyperparameters=_hyperparameters(request),
        method=request.method.model_dump(exclude_none=True) if request.method else {"type": "supervised"},
        suffix=request.suffix,
        seed=request.seed if request.seed is not None else secrets.randbelow(2_147_483_647),
        metadata_=request.metadata,
        status=Status.VALIDATING_FILES.value,
        result_files=[],
        created_at=now,
        updated_at=now,
        next_refresh_at=now + SWEEP_LEASE,  # the submit is queued below; the sweep is a backstop
        submit_attempts=0,
        provider_state={"integrations": request.integrations} if request.integrations else None,
    )
    session.add(job)
    session.flush()
    add_event(session, job, f"Created fine-tuning job: {job.id}")
    outbox.enqueue(session, TaskName.JOBS_SUBMIT, job_id=job.id)
    return job


def list_jobs(
    session: Session, *, tenant_id: str, after: str | None, limit: int, metadata: dict[str, str]
) -> tuple[list[JobRow], bool]:
    query = select(JobRow).where(JobRow.tenant_id == tenant_id)
    if after:
        cursor = get_job(session, tenant_id=tenant_id, job_id=after)
        query = query.where(
            or_(
                JobRow.created_at < cursor.created_at,
                (JobRow.created_at == cursor.created_at) & (JobRow.id < cursor.id),
            )
        )
    query = query.order_by(JobRow.created_at.desc(), JobRow.id.desc())
    if not metadata:
        rows = list(session.scalars(query.limit(limit + 1)))
        return rows[:limit], len(rows) > limit
    matches: list[JobRow] = []
    for row in session.scalars(query.execution_options(yield_per=500)):
        if all((row.metadata_ or {}).get(key) == value for key, value in metadata.items()):
            matches.append(row)
            if len(matches) > limit:
                break
    return matches[:limit], len(matches) > limit


Row = TypeVar("Row", JobEventRow, JobCheckpointRow)


def _newest_first(
    session: Session,
    model: type[Row],
    order: InstrumentedAttribute[int],
    job: JobRow,
    *,
    after: str | None,
    limit: int,
    noun: str,
) -> tuple[list[Row], bool]:
    """A page of the job's rows, newest first by `order`; `after` continues past that row."""
    query = select(model).where(model.job_id == job.id)
    if after:
        cursor = session.get(model, after)
        if cursor is None or cursor.job_id != job.id:
            raise InvalidRequest(f"No {noun} '{after}' in this job.", param="after")
        query = query.where(order < getattr(cursor, order.key))
    rows = list(session.scalars(query.order_by(order.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def list_events(
    session: Session, job: JobRow, *, after: str | None, limit: int
) -> tuple[list[JobEventRow], bool]:
    return _newest_first(session, JobEventRow, JobEventRow.seq, job, after=after, limit=limit, noun="event")


def list_checkpoints(
    session: Session, job: JobRow, *, after: str | None, limit: int
) -> tuple[list[JobCheckpointRow], bool]:
    return _newest_first(
        session,
        JobCheckpointRow,
        JobCheckpointRow.step_number,
        job,
        after=after,
        limit=limit,
        noun="checkpoint",
    )
