"""Fine-tuning at a provider, through the official `openai` SDK (sync; used by workers and by the
API's cancel/pause/resume). The SDK's retries are off: Celery is the one layer that retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

import openai
from openai.types import FileObject
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from service.providers.errors import calling_provider

FTM_JOB_ID = "ftm_job_id"


@dataclass
class FineTuningProvider:
    name: str
    client: openai.OpenAI

    @calling_provider
    def upload_file(self, filename: str, body: BinaryIO) -> FileObject:
        """Upload `body` (a binary stream, read to its end; the caller closes it)."""
        return self.client.files.create(file=(filename, body), purpose="fine-tune")

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
    def find_job(self, ftm_job_id: str) -> FineTuningJob | None:
        """The provider job created for our job, if any (how creation stays exactly-once)."""
        page = self.client.fine_tuning.jobs.list(metadata={FTM_JOB_ID: ftm_job_id}, limit=10)
        for job in page.data:
            if (job.metadata or {}).get(FTM_JOB_ID) == ftm_job_id:
                return job
        return None

    @calling_provider
    def create_job(self, ftm_job_id: str, params: dict[str, Any]) -> FineTuningJob:
        metadata = {**(params.pop("metadata", None) or {}), FTM_JOB_ID: ftm_job_id}
        return self.client.fine_tuning.jobs.create(**params, metadata=metadata)

    @calling_provider
    def retrieve_job(self, provider_job_id: str) -> FineTuningJob:
        return self.client.fine_tuning.jobs.retrieve(provider_job_id)

    @calling_provider
    def cancel_job(self, provider_job_id: str) -> FineTuningJob:
        return self.client.fine_tuning.jobs.cancel(provider_job_id)

    @calling_provider
    def pause_job(self, provider_job_id: str) -> FineTuningJob:
        return self.client.fine_tuning.jobs.pause(provider_job_id)

    @calling_provider
    def resume_job(self, provider_job_id: str) -> FineTuningJob:
        return self.client.fine_tuning.jobs.resume(provider_job_id)

    @calling_provider
    def new_events(self, provider_job_id: str, known: set[str]) -> list[FineTuningJobEvent]:
        """Events not seen yet, oldest first (the provider lists newest first)."""
        fresh: list[FineTuningJobEvent] = []
        for event in self.client.fine_tuning.jobs.list_events(provider_job_id, limit=100):
            if event.id in known:
                break
            fresh.append(event)
        return list(reversed(fresh))

    @calling_provider
    def checkpoints(self, provider_job_id: str) -> list[FineTuningJobCheckpoint]:
        return list(self.client.fine_tuning.jobs.checkpoints.list(provider_job_id, limit=100))

    @calling_provider
    def delete_model(self, model: str) -> None:
        self.client.models.delete(model)
