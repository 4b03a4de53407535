"""`/v1/fine_tuning/jobs`: create, list, retrieve, cancel, pause, resume, events, checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from service.contract import errors
from service.db import session_scope
from service.deps import DbSession, FineTuningCaller, IdempotentCreate, get_runtime
from service.errors import NotFound
from service.evals import job_evaluations
from service.idempotency.service import reload_owned
from service.jobs import control, estimate, metrics, provider_webhooks, service
from service.jobs.access import ProviderAccess
from service.jobs.models import JobRow
from service.jobs.schemas import (
    Job,
    JobCheckpoint,
    JobCreate,
    JobEstimate,
    JobEvent,
    JobMetrics,
    StepMetrics,
)
from service.jobs.states import Status
from service.pagination import After, Page
from service.providers.webhooks import verify_webhook
from service.proxy.payload import read_body
from service.routing import ServiceRoute

JobEstimateRequest = JobCreate  # the same body, so the estimate refuses what a create refuses
router = APIRouter(prefix="/v1", tags=["fine_tuning"], route_class=ServiceRoute)
MAX_UNIX = 253402300799  # the last second of year 9999

# The job's state may forbid the action (400, as at OpenAI); the provider may be unreachable.
CONTROL_ERRORS = errors(400, 409, 503, s400="The job's status does not allow this action.")
JobId = Annotated[str, Path(description="The job's id, `ftjob-…`.")]


def get_job_or_404(job_id: JobId, caller: FineTuningCaller, session: DbSession) -> JobRow:
    return service.get_job(session, tenant_id=caller.tenant_id, job_id=job_id)


CurrentJob = Annotated[JobRow, Depends(get_job_or_404)]


def get_access(request: Request) -> ProviderAccess:
    return ProviderAccess.from_runtime(get_runtime(request))


Access = Annotated[ProviderAccess, Depends(get_access)]


@router.post("/fine_tuning/jobs", response_model=Job, responses=errors(404))
def create_job(
    body: JobCreate,
    request: Request,
    caller: FineTuningCaller,
    session: DbSession,
    idempotency: IdempotentCreate,
) -> Job:
    """Create a fine-tuning job. It starts in `validating_files`; workers upload the files to the
    provider and create the provider job, and sweeps follow it to its end. A job whose estimated
    cost would take the tenant over its monthly training budget is refused (400,
    `training_budget_exceeded`). With an `Idempotency-Key`, a retry returns the job the first
    request created."""
    runtime = get_runtime(request)
    return idempotency.create(
        session,
        tenant_id=caller.tenant_id,
        route="POST /v1/fine_tuning/jobs",
        parameters=body.model_dump(mode="json", exclude_unset=True),
        make=lambda: Job.from_row(
            service.create_job(
                session,
                body,
                caller=caller,
                providers=runtime.providers,
                blobs=runtime.blobs,
                prices=runtime.settings.training_prices,
            )
        ),
        reload=reload_owned(session, JobRow, caller.tenant_id, Job.from_row),
    )


@router.post("/fine_tuning/estimates", response_model=JobEstimate, responses=errors(404))
def estimate_job(
    body: JobEstimateRequest, request: Request, caller: FineTuningCaller, session: DbSession
) -> JobEstimate:
    """Estimate a job before creating it (native): the body is a job create's. Returns the epochs
    (OpenAI's heuristic for `auto`), billed tokens per epoch and in all, the cost from the price
    table, warnings (truncation, data quality) and `allowed_to_proceed`. Nothing is created.
    Bad parameters are the same 400s as a create's."""
    runtime = get_runtime(request)
    return estimate.estimate_job(
        session, body, caller=caller, prices=runtime.settings.training_prices, blobs=runtime.blobs
    )


@router.get("/fine_tuning/jobs", response_model=Page[Job])
def list_jobs(
    request: Request,
    caller: FineTuningCaller,
    session: DbSession,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Annotated[Status | None, Query(description="Only jobs in this status.")] = None,
    model: Annotated[
        str | None,
        Query(min_length=1, max_length=255, description="Only jobs of this base or fine-tuned model."),
    ] = None,
    created_after: Annotated[
        int | None,
        Query(ge=0, le=MAX_UNIX, description="Only jobs created at or after this time (unix seconds)."),
    ] = None,
    created_before: Annotated[
        int | None, Query(ge=0, le=MAX_UNIX, description="Only jobs created before this time (unix seconds).")
    ] = None,
) -> Page[Job]:
    """List the tenant's jobs, newest first, a page at a time (`after` the last id of a page).
    Narrow the list by `status`, `model`, creation time, and metadata with `metadata[key]=value`;
    the filters combine."""
    metadata = {
        key[len("metadata[") : -1]: value
        for key, value in request.query_params.multi_items()
        if key.startswith("metadata[") and key.endswith("]")
    }
    filters = service.JobFilters(
        metadata=metadata,
        status=status,
        model=model,
        created_after=_moment(created_after),
        created_before=_moment(created_before),
    )
    rows, has_more = service.list_jobs(
        session, tenant_id=caller.tenant_id, after=after, limit=limit, filters=filters
    )
    evaluations = job_evaluations.references(
        session, tenant_id=caller.tenant_id, job_ids=[row.id for row in rows]
    )
    return Page[Job].of([Job.from_row(row, evaluations.get(row.id)) for row in rows], has_more)


def _moment(unix: int | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix is not None else None


@router.get("/fine_tuning/jobs/{job_id}", response_model=Job)
def retrieve_job(job: CurrentJob, session: DbSession) -> Job:
    """Retrieve a job (with, once it succeeded, where its evaluation stands)."""
    return Job.from_row(
        job, job_evaluations.references(session, tenant_id=job.tenant_id, job_ids=[job.id]).get(job.id)
    )


# Cancel, pause and resume hold no request transaction: the provider is asked first, with no
# transaction open, and its answer applied in a short one (service.jobs.control).


@router.post("/fine_tuning/jobs/{job_id}/cancel", response_model=Job, responses=CONTROL_ERRORS)
def cancel_job(job_id: JobId, caller: FineTuningCaller, request: Request, access: Access) -> Job:
    """Cancel a job that has not finished."""
    sessions = get_runtime(request).sessions
    return Job.from_row(
        control.cancel_job(sessions, tenant_id=caller.tenant_id, job_id=job_id, access=access)
    )


@router.post(
    "/fine_tuning/jobs/{job_id}/retry",
    response_model=Job,
    responses=errors(409, s409="`job_not_retryable`: only a failed or cancelled job can be retried."),
)
def retry_job(
    request: Request,
    job: CurrentJob,
    caller: FineTuningCaller,
    session: DbSession,
    idempotency: IdempotentCreate,
) -> Job:
    """Retry a failed or cancelled job (native): a new job from the same create request (model,
    files, method and hyperparameters as asked, suffix, seed, metadata), checked again as a
    create is. The new job says which it retries in its first events. With an
    `Idempotency-Key`, a retry of this call returns the job it created."""
    runtime = get_runtime(request)
    return idempotency.create(
        session,
        tenant_id=caller.tenant_id,
        route=f"POST /v1/fine_tuning/jobs/{job.id}/retry",
        parameters={},
        make=lambda: Job.from_row(
            service.retry_job(
                session,
                job,
                caller=caller,
                providers=runtime.providers,
                blobs=runtime.blobs,
                prices=runtime.settings.training_prices,
            )
        ),
        reload=reload_owned(session, JobRow, caller.tenant_id, Job.from_row),
    )


@router.post("/fine_tuning/jobs/{job_id}/pause", response_model=Job, responses=CONTROL_ERRORS)
def pause_job(job_id: JobId, caller: FineTuningCaller, request: Request, access: Access) -> Job:
    """Pause a running job."""
    sessions = get_runtime(request).sessions
    return Job.from_row(control.pause_job(sessions, tenant_id=caller.tenant_id, job_id=job_id, access=access))


@router.post("/fine_tuning/jobs/{job_id}/resume", response_model=Job, responses=CONTROL_ERRORS)
def resume_job(job_id: JobId, caller: FineTuningCaller, request: Request, access: Access) -> Job:
    """Resume a paused job."""
    sessions = get_runtime(request).sessions
    return Job.from_row(
        control.resume_job(sessions, tenant_id=caller.tenant_id, job_id=job_id, access=access)
    )


@router.get("/fine_tuning/jobs/{job_id}/events", response_model=Page[JobEvent])
def list_events(
    job: CurrentJob, session: DbSession, after: After = None, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> Page[JobEvent]:
    """The job's events, newest first: lifecycle messages and training metrics."""
    rows, has_more = service.list_events(session, job, after=after, limit=limit)
    return Page[JobEvent].of([JobEvent.from_row(row) for row in rows], has_more)


@router.get("/fine_tuning/jobs/{job_id}/metrics", response_model=JobMetrics)
def job_metrics(request: Request, job: CurrentJob, session: DbSession) -> JobMetrics:
    """A job's training figures as a series by step (native): train loss and token accuracy,
    validation loss and accuracy, full-validation figures; from its metrics events while it runs
    and its result file once it has one."""
    series = metrics.job_metrics(session, get_runtime(request).blobs, job)
    return JobMetrics(
        fine_tuning_job_id=job.id,
        status=job.status,
        total_steps=series.total_steps,
        trained_tokens=job.trained_tokens,
        data=[StepMetrics(**row) for row in series.as_list()],
    )


@router.get("/fine_tuning/jobs/{job_id}/checkpoints", response_model=Page[JobCheckpoint])
def list_checkpoints(
    job: CurrentJob, session: DbSession, after: After = None, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> Page[JobCheckpoint]:
    """The job's checkpoints (the last epochs), latest step first."""
    rows, has_more = service.list_checkpoints(session, job, after=after, limit=limit)
    return Page[JobCheckpoint].of([JobCheckpoint.from_row(row) for row in rows], has_more)


class ProviderWebhookReceipt(BaseModel):
    """What became of a provider's webhook: `refreshing` (its job is being refreshed now),
    `duplicate` (this `webhook-id` was received before) or `ignored` (not about an active job)."""

    received: bool = True
    outcome: provider_webhooks.Outcome


PROVIDER_WEBHOOK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
        "description": "The provider's event, e.g. OpenAI's `fine_tuning.job.succeeded`, as sent.",
    }
}


# Outside /v1, where every route takes an API key: a provider proves itself by its signature.
inbound_router = APIRouter(tags=["providers"], route_class=ServiceRoute)


@inbound_router.post(
    "/providers/{provider}/webhooks",
    response_model=ProviderWebhookReceipt,
    openapi_extra=PROVIDER_WEBHOOK_BODY,
    responses=errors(
        404,
        s404="`provider_webhooks_off`: no such provider, or no webhook secret is configured for it.",
    ),
)
async def receive_provider_webhook(
    request: Request, provider: Annotated[str, Path(description="The provider's name, e.g. `openai`.")]
) -> ProviderWebhookReceipt:
    """A provider's webhook (native): OpenAI's `fine_tuning.job.*` events, verified with the
    provider's webhook secret (`FTM_OPENAI_WEBHOOK_SECRET`, `FTM_LOCAL_PROVIDER_WEBHOOK_SECRET`),
    make the job they name due for a refresh at once. No API key: the signature is the proof.
    A bad or stale signature is a 400 naming `webhook-signature`; a repeated `webhook-id` is
    acknowledged and ignored. Point the provider's webhook at `{base}/providers/{name}/webhooks`."""
    runtime = get_runtime(request)
    config = runtime.providers.configs.get(provider)
    if config is None or config.webhook_secret is None:
        raise NotFound(
            f"The provider '{provider}' takes no webhooks here: it is not configured, or has no "
            "webhook secret.",
            param="provider",
            code="provider_webhooks_off",
        )
    payload = await read_body(
        request.stream(),
        declared=request.headers.get("content-length"),
        limit=runtime.settings.max_json_body_bytes,
    )
    webhook = verify_webhook(payload, request.headers, secret=config.webhook_secret)

    def record() -> provider_webhooks.Outcome:
        with session_scope(runtime.sessions) as session:
            return provider_webhooks.receive(session, provider, webhook)

    return ProviderWebhookReceipt(outcome=await run_in_threadpool(record))
