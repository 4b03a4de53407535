"""Fine-tuning job shapes, as OpenAI's API has them (plus OpenAI's field limits)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.clock import to_unix
from service.jobs.models import JobCheckpointRow, JobEventRow, JobRow

Auto = Literal["auto"]


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: Auto | int | None = Field(default=None, description="'auto' or 1-256.")
    learning_rate_multiplier: Auto | float | None = Field(default=None, description="'auto' or > 0.")
    n_epochs: Auto | int | None = Field(default=None, description="'auto' or 1-50.")

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value: Auto | int | None) -> Auto | int | None:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError("batch_size must be 'auto' or between 1 and 256")
        return value

    @field_validator("learning_rate_multiplier")
    @classmethod
    def _lr(cls, value: Auto | float | None) -> Auto | float | None:
        if isinstance(value, float | int) and value <= 0:
            raise ValueError("learning_rate_multiplier must be 'auto' or greater than 0")
        return value

    @field_validator("n_epochs")
    @classmethod
    def _epochs(cls, value: Auto | int | None) -> Auto | int | None:
        if isinstance(value, int) and not 1 <= value <= 50:
            raise ValueError("n_epochs must be 'auto' or between 1 and 50")
        return value


class MethodSection(BaseModel):
    model_config = ConfigDict(extra="allow")
    hyperparameters: Hyperparameters | None = None


class Method(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: MethodSection | None = None
    dpo: MethodSection | None = None
    reinforcement: MethodSection | None = None


class JobCreate(BaseModel):
    """Create a fine-tuning job (the body of `client.fine_tuning.jobs.create`)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="A fine-tunable base model, or a fine-tuned model of yours to continue.")
    training_file: str = Field(description="A processed file with purpose `fine-tune`.")
    validation_file: str | None = None
    hyperparameters: Hyperparameters | None = Field(default=None, description="Deprecated: use `method`.")
    method: Method | None = None
    suffix: str | None = Field(default=None, min_length=1, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2_147_483_647)
    metadata: dict[str, str] | None = Field(
        default=None, description="Up to 15 pairs (one of OpenAI's 16 is kept for the service's own id)."
    )
    integrations: list[dict[str, Any]] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > 15:
            raise ValueError("at most 15 metadata pairs (the service keeps one of OpenAI's 16)")
        for key, item in value.items():
            if len(key) > 64 or len(item) > 512:
                raise ValueError("metadata keys are at most 64 characters and values at most 512")
            if key.startswith("ftm_"):
                raise ValueError("metadata keys starting with 'ftm_' are reserved")
        return value


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class Job(BaseModel):
    """A fine-tuning job. `status` is one of validating_files, queued, running, paused, succeeded,
    failed, cancelled; `fine_tuned_model` is set once it succeeded."""

    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError | None
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: dict[str, Any]
    model: str
    organization_id: str
    result_files: list[str]
    seed: int
    status: str
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    estimated_finish: int | None
    integrations: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None
    method: dict[str, Any] | None
    user_provided_suffix: str | None = None

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        return cls(
            id=row.id,
            created_at=to_unix(row.created_at) or 0,
            error=JobError(**row.error) if row.error else None,
            fine_tuned_model=row.fine_tuned_model,
            finished_at=to_unix(row.finished_at),
            hyperparameters=row.hyperparameters,
            model=row.model,
            organization_id=row.tenant_id,
            result_files=list(row.result_files or []),
            seed=row.seed,
            status=row.status,
            trained_tokens=row.trained_tokens,
            training_file=row.training_file,
            validation_file=row.validation_file,
            estimated_finish=to_unix(row.estimated_finish),
            integrations=(row.provider_state or {}).get("integrations"),
            metadata=row.metadata_,
            method=row.method,
            user_provided_suffix=row.suffix,
        )


class JobEvent(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    type: Literal["message", "metrics"]
    data: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: JobEventRow) -> JobEvent:
        return cls(
            id=row.id,
            created_at=to_unix(row.created_at) or 0,
            level=row.level,
            message=row.message,
            type=row.type,
            data=row.data,
        )


class JobCheckpoint(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    step_number: int
    metrics: dict[str, float | None]

    @classmethod
    def from_row(cls, row: JobCheckpointRow) -> JobCheckpoint:
        return cls(
            id=row.id,
            created_at=to_unix(row.created_at) or 0,
            fine_tuned_model_checkpoint=row.fine_tuned_model_checkpoint,
            fine_tuning_job_id=row.job_id,
            step_number=row.step_number,
            metrics=row.metrics,
        )
