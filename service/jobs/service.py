"""Fine-tuning jobs, as the API sees them: create, read, list, events, checkpoints.

Creating a job only writes our row and an outbox entry (`jobs.submit`) in one transaction; workers
upload the files and create the provider job (`service.jobs.submission`). Cancel, pause and resume
are `service.jobs.control`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.auth.service import Principal
from service.blobs.store import BlobStore
from service.clock import utcnow
from service.errors import Conflict, InvalidRequest, NotFound
from service.evals import job_evaluations
from service.files.encodings import report_for_model
from service.files.models import FileRow, FileStatus
from service.ids import new_id
from service.jobs import budgets
from service.jobs.accounts import credentials_for_new_job
from service.jobs.costs import job_cost
from service.jobs.datasets import format_misfit
from service.jobs.events import add_event
from service.jobs.models import JobCheckpointRow, JobEventRow, JobRow
from service.jobs.refresh import SWEEP_LEASE
from service.jobs.schemas import JobCreate
from service.jobs.states import Status
from service.models.catalog import BASE_MODELS, base_model_of
from service.models.service import owned_fine_tuned_model
from service.outbox import service as outbox
from service.providers.registry import ProviderRegistry
from service.tasks import TaskName
from service.tenancy import get_owned, keyset_page, owned

DEFAULT_HYPERPARAMETERS = {"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"}


def job_not_found(job_id: str) -> NotFound:
    return NotFound(
        f"No fine-tuning job found with id '{job_id}'.", param="fine_tuning_job_id", code="job_not_found"
    )


def get_job(session: Session, *, tenant_id: str, job_id: str) -> JobRow:
    return get_owned(session, JobRow, job_id, tenant_id=tenant_id, not_found=job_not_found)


def load_file(session: Session, tenant_id: str, file_id: str, param: str) -> FileRow:
    """A file of the caller's that a job may name (a missing one and another tenant's look alike)."""
    row = session.scalar(owned(FileRow, tenant_id).where(FileRow.id == file_id))
    if row is None:
        raise InvalidRequest(f"File '{file_id}' does not exist.", param=param, code="file_not_found")
    if row.purpose != "fine-tune":
        raise InvalidRequest(f"File '{file_id}' has purpose '{row.purpose}', not 'fine-tune'.", param=param)
    return row


def file_problem(row: FileRow, *, model: str, method: str) -> str | None:
    """Why a job of `model` and `method` cannot train on this file; None if it can (or may, once
    the file is validated)."""
    if row.status == FileStatus.ERROR:
        return f"File '{row.id}' is invalid: {row.status_details}"
    if row.redacted_file_id is not None:
        return (
            f"File '{row.id}' holds personal data and was uploaded with personal_data=redact; "
            f"train on its redacted copy '{row.redacted_file_id}'."
        )
    if row.status == FileStatus.PROCESSED and row.report is not None:
        misfit = format_misfit(model, method, row.report.get("format"))
        if misfit is not None:
            return f"File '{row.id}' does not fit the model: {misfit}"
    return None


def method_type(request: JobCreate) -> str:
    return request.method.type if request.method is not None else "supervised"


def _check_file(session: Session, request: JobCreate, tenant_id: str, file_id: str, param: str) -> FileRow:
    row = load_file(session, tenant_id, file_id, param)
    problem = file_problem(row, model=request.model, method=method_type(request))
    if problem is not None:
        raise InvalidRequest(problem, param=param, code="invalid_file")
    return row


def hyperparameters_of(request: JobCreate) -> dict[str, Any]:
    chosen = request.hyperparameters
    if request.method is not None:
        section = getattr(request.method, request.method.type)
        chosen = section.hyperparameters if section is not None else None
    given = chosen.model_dump(exclude_none=True) if chosen is not None else {}
    return {**DEFAULT_HYPERPARAMETERS, **given}


def estimated_cost(
    session: Session, blobs: BlobStore, row: FileRow, request: JobCreate, prices: Mapping[str, float]
) -> float | None:
    """The training cost of `request` on its validated training file `row` (None: not known yet);
    the tokens of the model's encoding are counted now if validation left them pending."""
    base = base_model_of(request.model)
    if base not in BASE_MODELS:
        return None
    report = report_for_model(session, blobs, row, base)
    if report is None:
        return None
    return job_cost(report, base, hyperparameters_of(request)["n_epochs"], prices)


def create_job(
    session: Session,
    request: JobCreate,
    *,
    caller: Principal,
    providers: ProviderRegistry,
    blobs: BlobStore,
    retry_of: str | None = None,
    prices: Mapping[str, float] | None = None,
) -> JobRow:
    """Create a job in `validating_files`; refused (400) before anything is written when its
    estimated cost does not fit the tenant's monthly budget (`service.jobs.budgets`)."""
    if request.model in BASE_MODELS:
        provider = request.provider or providers.provider_for(request.model) or providers.default
    elif request.model.startswith("ft:"):
        provider = owned_fine_tuned_model(session, tenant_id=caller.tenant_id, model=request.model).provider
        if request.provider not in (None, provider):
            raise InvalidRequest(
                f"Model '{request.model}' is at the provider '{provider}'; it continues there.",
                param="provider",
            )
    else:
        known = ", ".join(BASE_MODELS)
        raise InvalidRequest(
            f"Model '{request.model}' cannot be fine-tuned; choose one of {known}, or a fine-tuned model of yours.",
            param="model",
            code="model_not_available",
        )
    providers.config(provider)
    training = _check_file(session, request, caller.tenant_id, request.training_file, "training_file")
    if request.validation_file is not None:
        if request.validation_file == request.training_file:
            raise InvalidRequest(
                "The validation file must differ from the training file.", param="validation_file"
            )
        _check_file(session, request, caller.tenant_id, request.validation_file, "validation_file")
    if request.evaluation is not None:
        job_evaluations.check_options(session, request.evaluation, tenant_id=caller.tenant_id)
    now = utcnow()
    cost = estimated_cost(session, blobs, training, request, prices or {})
    budgets.check(session, caller.tenant_id, cost, now)
    job = JobRow(
        id=new_id("ftjob-"),
        tenant_id=caller.tenant_id,
        provider=provider,
        credentials_id=credentials_for_new_job(session, tenant_id=caller.tenant_id, provider=provider),
        model=request.model,
        training_file=request.training_file,
        validation_file=request.validation_file,
        hyperparameters=hyperparameters_of(request),
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
        request=request.model_dump(mode="json", exclude_unset=True),
        retry_of=retry_of,
        estimated_cost_usd=cost,
    )
    session.add(job)
    session.flush()
    add_event(session, job, f"Created fine-tuning job: {job.id}")
    if retry_of is not None:
        add_event(session, job, f"Retry of fine-tuning job {retry_of}")
    outbox.enqueue(session, TaskName.JOBS_SUBMIT, job_id=job.id)
    return job


RETRYABLE = {Status.FAILED, Status.CANCELLED}


def retry_job(
    session: Session,
    job: JobRow,
    *,
    caller: Principal,
    providers: ProviderRegistry,
    blobs: BlobStore,
    prices: Mapping[str, float] | None = None,
) -> JobRow:
    """A new job from a failed or cancelled one's create request (the same files, model and
    parameters, validated again as a create is); a 409 for a job in any other state."""
    if Status(job.status) not in RETRYABLE:
        raise Conflict(
            f"Job {job.id} is {job.status}; only a failed or cancelled job can be retried.",
            param="job_id",
            code="job_not_retryable",
        )
    request = JobCreate.model_validate(job.request if job.request is not None else _request_of(job))
    return create_job(
        session, request, caller=caller, providers=providers, blobs=blobs, prices=prices, retry_of=job.id
    )


def _request_of(job: JobRow) -> dict[str, Any]:
    """The create request of a job made before requests were recorded, from what it kept."""
    request: dict[str, Any] = {"model": job.model, "training_file": job.training_file, "seed": job.seed}
    for name, value in (
        ("validation_file", job.validation_file),
        ("suffix", job.suffix),
        ("metadata", job.metadata_),
        ("method", job.method),
    ):
        if value is not None:
            request[name] = value
    return request


@dataclass(frozen=True)
class JobFilters:
    """What a job list may be narrowed by; every field is optional."""

    metadata: dict[str, str] = field(default_factory=dict)
    status: Status | None = None
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def list_jobs(
    session: Session, *, tenant_id: str, after: str | None, limit: int, filters: JobFilters
) -> tuple[list[JobRow], bool]:
    metadata = filters.metadata

    def has_metadata(row: JobRow) -> bool:
        return all((row.metadata_ or {}).get(key) == value for key, value in metadata.items())

    query = owned(JobRow, tenant_id)
    if filters.status is not None:
        query = query.where(JobRow.status == filters.status.value)
    if filters.model is not None:
        query = query.where(JobRow.model == filters.model)
    if filters.created_after is not None:
        query = query.where(JobRow.created_at >= filters.created_after)
    if filters.created_before is not None:
        query = query.where(JobRow.created_at < filters.created_before)
    return keyset_page(
        session,
        query,
        keys=(JobRow.created_at, JobRow.id),
        identity=JobRow.id,
        after=after,
        limit=limit,
        matches=has_metadata if metadata else None,
    )


def list_events(
    session: Session, job: JobRow, *, after: str | None, limit: int
) -> tuple[list[JobEventRow], bool]:
    query = select(JobEventRow).where(JobEventRow.job_id == job.id)
    return keyset_page(
        session, query, keys=(JobEventRow.seq,), identity=JobEventRow.id, after=after, limit=limit
    )


def list_checkpoints(
    session: Session, job: JobRow, *, after: str | None, limit: int
) -> tuple[list[JobCheckpointRow], bool]:
    query = select(JobCheckpointRow).where(JobCheckpointRow.job_id == job.id)
    return keyset_page(
        session,
        query,
        keys=(JobCheckpointRow.step_number, JobCheckpointRow.id),
        identity=JobCheckpointRow.id,
        after=after,
        limit=limit,
    )
