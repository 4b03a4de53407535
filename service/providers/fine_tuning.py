"""Fine-tuning at a provider, through the official `openai` SDK (sync; used by workers and by the
API's cancel/pause/resume). The SDK's retries are off: the service retries, in one layer. Answers
come back as the service's own value types (`service.providers.types`), never as SDK objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

import openai
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from service.providers.errors import calling_provider
from service.providers.types import RemoteCheckpoint, RemoteEvent, RemoteJob

FTM_JOB_ID = "ftm_job_id"


def _job(job: FineTuningJob) -> RemoteJob:
    resolved = {key: value for key, value in job.hyperparameters.model_dump().items() if value is not None}
    return RemoteJob(
        id=job.id,
        status=job.status,
        fine_tuned_model=job.fine_tuned_model,
        trained_tokens=job.trained_tokens,
        estimated_finish=job.estimated_finish,
        hyperparameters=resolved,
        result_files=tuple(job.result_files),
        error=job.error.model_dump() if job.error else None,
        metadata=dict(job.metadata or {}),
    )


def _event(event: FineTuningJobEvent) -> RemoteEvent:
    return RemoteEvent(
        id=event.id,
        created_at=event.created_at,
        level=event.level,
        message=event.message,
        type=event.type or "message",
        data=event.data if isinstance(event.data, dict) else None,
    )


def _checkpoint(checkpoint: FineTuningJobCheckpoint) -> RemoteCheckpoint:
    return RemoteCheckpoint(
        id=checkpoint.id,
        created_at=checkpoint.created_at,
        fine_tuned_model_checkpoint=checkpoint.fine_tuned_model_checkpoint,
        step_number=checkpoint.step_number,
        metrics=checkpoint.metrics.model_dump(),
    )


@dataclass
class FineTuningProvider:
    name: str
    client: openai.OpenAI
    credentials_id: str | None = None  # a tenant's own credentials; None: the operator's

    @property
    def account(self) -> str:
        """Whose files these are at the provider: the operator's (the provider's name) or a
        tenant's own account (`name~credentials id`); a file is copied once per account."""
        return self.name if self.credentials_id is None else f"{self.name}~{self.credentials_id}"

    @calling_provider
    def upload_file(self, filename: str, body: BinaryIO) -> str:
        """Upload `body` (a binary stream, read to its end; the caller closes it); the provider's
        id for it."""
        return self.client.files.create(file=(filename, body), purpose="fine-tune").id

    @calling_provider
    def find_file(self, filename: str, *, created_since: int) -> str | None:
        """The id of a fine-tune file named `filename` uploaded at or after `created_since` (Unix
        seconds), if any: how an upload whose answer was lost is found instead of repeated."""
        for file in self.client.files.list(purpose="fine-tune", order="desc", limit=100):
            if file.created_at < created_since:
                return None
            if file.filename == filename:
                return file.id
        return None

    @calling_provider
    def file_content(self, file_id: str) -> bytes:
        return self.client.files.content(file_id).content

    @calling_provider
    def find_job(self, ftm_job_id: str) -> RemoteJob | None:
        """The provider job created for our job, if any (how creation stays exactly-once)."""
        page = self.client.fine_tuning.jobs.list(metadata={FTM_JOB_ID: ftm_job_id}, limit=10)
        for job in page.data:
            if (job.metadata or {}).get(FTM_JOB_ID) == ftm_job_id:
                return _job(job)
        return None

    @calling_provider
    def create_job(self, ftm_job_id: str, params: dict[str, Any]) -> RemoteJob:
        metadata = {**(params.pop("metadata", None) or {}), FTM_JOB_ID: ftm_job_id}
        return _job(self.client.fine_tuning.jobs.create(**params, metadata=metadata))

    @calling_provider
    def retrieve_job(self, provider_job_id: str) -> RemoteJob:
        return _job(self.client.fine_tuning.jobs.retrieve(provider_job_id))

    @calling_provider
    def cancel_job(self, provider_job_id: str) -> RemoteJob:
        return _job(self.client.fine_tuning.jobs.cancel(provider_job_id))

    @calling_provider
    def pause_job(self, provider_job_id: str) -> RemoteJob:
        return _job(self.client.fine_tuning.jobs.pause(provider_job_id))

    @calling_provider
    def resume_job(self, provider_job_id: str) -> RemoteJob:
        return _job(self.client.fine_tuning.jobs.resume(provider_job_id))

    @calling_provider
    def new_events(self, provider_job_id: str, known: set[str]) -> list[RemoteEvent]:
        """Events not seen yet, oldest first (the provider lists newest first)."""
        fresh: list[RemoteEvent] = []
        for event in self.client.fine_tuning.jobs.list_events(provider_job_id, limit=100):
            if event.id in known:
                break
            fresh.append(_event(event))
        return list(reversed(fresh))

    @calling_provider
    def checkpoints(self, provider_job_id: str) -> list[RemoteCheckpoint]:
        return [
            _checkpoint(c) for c in self.client.fine_tuning.jobs.checkpoints.list(provider_job_id, limit=100)
        ]

    @calling_provider
    def delete_model(self, model: str) -> None:
        self.client.models.delete(model)

    @calling_provider
    def check_access(self) -> None:
        """List the models (`GET /models`): whether the provider accepts these credentials
        (ProviderRejected with its status and message when it does not)."""
        self.client.models.list()
