"""Routes of the fine-tuning jobs API."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from emulator.deps import CurrentEmulator, advance_job, advance_jobs
from emulator.jobs import service as jobs
from emulator.jobs.records import load_job
from emulator.jobs.schemas import JobCreate

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"], dependencies=[Depends(advance_jobs)])
_METADATA_PARAM = re.compile(r"^metadata\[(.+)\]$")
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post("")
def create_job(emulator: CurrentEmulator, body: JobCreate) -> dict[str, Any]:
    """Create a fine-tuning job; it starts in ``validating_files``."""
    job = jobs.create_job(
        body,
        store=emulator.store,
        engine=emulator.engine,
        faults=emulator.faults,
        organization=emulator.settings.organization,
        clock=emulator.clock,
    )
    return job.to_public()


@router.get("")
def list_jobs(
    emulator: CurrentEmulator, request: Request, after: str | None = None, limit: Limit = 20
) -> dict[str, Any]:
    """Jobs newest first; ``metadata[key]=value`` query parameters filter them."""
    metadata = {}
    for name, value in request.query_params.multi_items():
        match = _METADATA_PARAM.match(name)
        if match:
            metadata[match.group(1)] = value
    return jobs.list_jobs(emulator.store, after=after, limit=limit, metadata=metadata)


@router.get("/{fine_tuning_job_id}", dependencies=[Depends(advance_job)])
def retrieve_job(emulator: CurrentEmulator, fine_tuning_job_id: str) -> dict[str, Any]:
    with emulator.store.read() as conn:
        return load_job(conn, fine_tuning_job_id).to_public()


@router.post("/{fine_tuning_job_id}/cancel")
def cancel_job(emulator: CurrentEmulator, fine_tuning_job_id: str) -> dict[str, Any]:
    return emulator.engine.cancel(fine_tuning_job_id).to_public()


@router.post("/{fine_tuning_job_id}/pause")
def pause_job(emulator: CurrentEmulator, fine_tuning_job_id: str) -> dict[str, Any]:
    """Pause a queued or running job (status ``paused``, as OpenAI reports it)."""
    return emulator.engine.pause(fine_tuning_job_id).to_public()


@router.post("/{fine_tuning_job_id}/resume")
def resume_job(emulator: CurrentEmulator, fine_tuning_job_id: str) -> dict[str, Any]:
    """Resume a paused job: it is queued again, then carries on from the step it reached."""
    return emulator.engine.resume(fine_tuning_job_id).to_public()


@router.get("/{fine_tuning_job_id}/events", dependencies=[Depends(advance_job)])
def list_events(
    emulator: CurrentEmulator, fine_tuning_job_id: str, after: str | None = None, limit: Limit = 20
) -> dict[str, Any]:
    """The job's events, newest first."""
    return jobs.list_events(emulator.store, fine_tuning_job_id, after=after, limit=limit)


@router.get("/{fine_tuning_job_id}/checkpoints", dependencies=[Depends(advance_job)])
def list_checkpoints(
    emulator: CurrentEmulator, fine_tuning_job_id: str, after: str | None = None, limit: Limit = 10
) -> dict[str, Any]:
    """The job's checkpoints (end of each of the last 3 epochs), newest first."""
    return jobs.list_checkpoints(emulator.store, fine_tuning_job_id, after=after, limit=limit)
