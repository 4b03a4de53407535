"""Fine-tuning job shapes, as OpenAI's API has them (plus OpenAI's field limits)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

from service.clock import to_unix
from service.evals.job_schemas import EvaluationOptions, JobEvaluationRef
from service.jobs.models import JobCheckpointRow, JobEventRow, JobRow

Auto = Literal["auto"]
SUFFIX_PATTERN = r"^[A-Za-z0-9._-]+$"


def _one_error(accepted: str) -> WrapValidator:
    """Report a failed `'auto' | number` as one error on the field (not one per union member)."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("invalid_value", f"must be 'auto' or {accepted}") from None

    return WrapValidator(validate)


# Strict, as OpenAI is: `true` or `"3"` is refused, not read as 1 or 3; a JSON integer is a valid float.
BatchSize = Annotated[
    Auto | Annotated[int, Strict(), Field(ge=1, le=256)], _one_error("an integer between 1 and 256")
]
LearningRateMultiplier = Annotated[
    Auto | Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)], _one_error("a number greater than 0")
]
Epochs = Annotated[
    Auto | Annotated[int, Strict(), Field(ge=1, le=50)], _one_error("an integer between 1 and 50")
]


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: BatchSize | None = Field(default=None, description="'auto' or 1-256.")
    learning_rate_multiplier: LearningRateMultiplier | None = Field(
        default=None, description="'auto' or > 0."
    )
    n_epochs: Epochs | None = Field(default=None, description="'auto' or 1-50.")


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
    model: str = Field(
        min_length=1, description="A fine-tunable base model, or a fine-tuned model of yours to continue."
    )
    training_file: str = Field(min_length=1, description="A processed file with purpose `fine-tune`.")
    validation_file: str | None = Field(default=None, min_length=1)
    hyperparameters: Hyperparameters | None = Field(default=None, description="Deprecated: use `method`.")
    method: Method | None = None
    suffix: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=SUFFIX_PATTERN,
        description="Up to 64 letters, digits, '.', '_' and '-'. It becomes part of the fine-tuned model's "
        "name (`ft:{model}:{organization}:{suffix}:{id}`), so it holds nothing that would split the name "
        "or the URL that addresses it (`/v1/models/{model}`).",
    )
    seed: Annotated[int, Strict()] | None = Field(default=None, ge=0, le=2_147_483_647)
    metadata: dict[str, str] | None = Field(
        default=None, description="Up to 15 pairs (one of OpenAI's 16 is kept for the service's own id)."
    )
    integrations: list[dict[str, Any]] | None = None
    provider: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="Native: the configured provider to train with (`local`, `openai`, or one of "
        "FTM_PROVIDERS). Default: the one whose `models` match the model, else FTM_DEFAULT_PROVIDER; "
        "a fine-tuned model continues at its own provider.",
    )
    evaluation: EvaluationOptions | None = Field(
        default=None,
        description="Native: how the job is evaluated when it succeeds (its fine-tuned model against "
        "its base model). Left out: a job with a `validation_file` is evaluated on it with the default "
        "criteria. The `openai` SDK sends it with `extra_body`.",
    )

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
    evaluation: JobEvaluationRef | None = Field(
        default=None,
        description="Native: once the job succeeded, its evaluation (null when it gets none); the "
        "comparison is at `GET /v1/fine_tuning/jobs/{id}/evaluation`.",
    )

    @classmethod
    def from_row(cls, row: JobRow, evaluation: JobEvaluationRef | None = None) -> Job:
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
            evaluation=evaluation,
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


class StepMetrics(BaseModel):
    """One training step's figures; null where the provider did not compute one."""

    step: int
    train_loss: float | None
    train_mean_token_accuracy: float | None
    valid_loss: float | None
    valid_mean_token_accuracy: float | None
    full_valid_loss: float | None
    full_valid_mean_token_accuracy: float | None


class JobMetrics(BaseModel):
    """A job's figures by step (native), from its metrics events while it runs and its result file
    once it has one (which wins), with the full-validation figures of its checkpoints."""

    object: Literal["fine_tuning.job.metrics"] = "fine_tuning.job.metrics"
    fine_tuning_job_id: str
    status: str
    total_steps: int | None = Field(description="The steps of the whole run, once the provider said.")
    trained_tokens: int | None
    data: list[StepMetrics]


class JobEstimate(BaseModel):
    """A job's pre-flight estimate (native): epochs, billed tokens and cost, from the files'
    validation reports. `allowed_to_proceed` is false when a job create would be refused or the
    job would fail on its files; `errors` say why. Warnings never block."""

    object: Literal["fine_tuning.job.estimate"] = "fine_tuning.job.estimate"
    model: str
    base_model: str
    encoding: str = Field(description="the tokenizer of the base model (`o200k_base`, `cl100k_base`)")
    training_file: str
    validation_file: str | None = None
    training_examples: int | None = None
    n_epochs: int | None = Field(default=None, description="the epochs given, or OpenAI's choice for `auto`")
    n_epochs_auto: bool
    billed_tokens_per_epoch: int | None = Field(
        default=None, description="training tokens, each example counted up to the model's training context"
    )
    total_billed_tokens: int | None = None
    price_per_million_tokens: float | None = Field(
        default=None, description="US dollars (FTM_TRAINING_PRICES)"
    )
    estimated_cost_usd: float | None = None
    validation_examples_in_training: int | None = Field(
        default=None, description="validation examples whose text is also in the training file"
    )
    monthly_budget_usd: float | None = Field(
        default=None, description="the tenant's monthly training budget (null: none)"
    )
    budget_committed_usd: float | None = Field(
        default=None, description="the estimated cost of the tenant's jobs created this calendar month (UTC)"
    )
    budget_left_usd: float | None = Field(default=None, description="what is left of the budget this month")
    warnings: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    allowed_to_proceed: bool = True
