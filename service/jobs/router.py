"""`/v1/fine_tuning/jobs`: create, list, retrieve, cancel, pause, resume, events, checkpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from service.contract import errors
from service.deps import DbSession, FineTuningCaller, get_runtime
from service.jobs import control, estimate, service
from service.jobs.access import ProviderAccess
from service.jobs.models import JobRow
from service.jobs.schemas import Job, JobCheckpoint, JobCreate, JobEstimate, JobEvent
from service.pagination import After, Page
from service.routing import ServiceRoute

JobEstimateRequest = JobCreate  # the same body, so the estimate refuses what a create refuses
router = APIRouter(prefix="/v1", tags=["fine_tuning"], route_class=ServiceRoute)

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
def create_job(body: JobCreate, request: Request, caller: FineTuningCaller, session: DbSession) -> Job:
    """Create a fine-tuning job. It starts in `validating_files`; workers upload the files to the
    provider and create the provider job, and sweeps follow it to its end. A job whose estimated
    cost would take the tenant over its monthly training budget is refused (400,
    `training_budget_exceeded`)."""
    runtime = get_runtime(request)
    job = service.create_job(
        session, body, caller=caller, providers=runtime.providers, prices=runtime.settings.training_prices
    )
    return Job.from_row(job)


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
) -> Page[Job]:
    """List the tenant's jobs, newest first. Filter by metadata with `metadata[key]=value`."""
    metadata = {
        key[len("metadata[") : -1]: value
        for key, value in request.query_params.multi_items()
        if key.startswith("metadata[") and key.endswith("]")
    }
    rows, has_more = service.list_jobs(
        session, tenant_id=caller.tenant_id, after=after, limit=limit, metadata=metadata
    )
    return Page[Job].of([Job.from_row(row) for row in rows], has_more)


@router.get("/fine_tuning/jobs/{job_id}", response_model=Job)
def retrieve_job(job: CurrentJob) -> Job:
    """Retrieve a job."""
    return Job.from_row(job)


# Cancel, pause and resume hold no request transaction: the provider is asked first, with no
# transaction open, and its answer applied in a short one (service.jobs.control).


@router.post("/fine_tuning/jobs/{job_id}/cancel", response_model=Job, responses=CONTROL_ERRORS)
def cancel_job(job_id: JobId, caller: FineTuningCaller, request: Request, access: Access) -> Job:
    """Cancel a job that has not finished."""
    sessions = get_runtime(request).sessions
    return Job.from_row(
        control.cancel_job(sessions, tenant_id=caller.tenant_id, job_id=job_id, access=access)
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


@router.get("/fine_tuning/jobs/{job_id}/checkpoints", response_model=Page[JobCheckpoint])
def list_checkpoints(
    job: CurrentJob, session: DbSession, after: After = None, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> Page[JobCheckpoint]:
    """The job's checkpoints (the last epochs), latest step first."""
    rows, has_more = service.list_checkpoints(session, job, after=after, limit=limit)
    return Page[JobCheckpoint].of([JobCheckpoint.from_row(row) for row in rows], has_more)
