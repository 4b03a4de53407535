"""Fine-tuning job requests and the persisted job record (public fields + timeline state).

The record is stored as one JSON document per job. ``to_public()`` renders exactly the
``fine_tuning.job`` object of OpenAI's API; the fields after ``user_provided_suffix`` are the
emulator's own bookkeeping and are never shown.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

JobStatus = Literal["validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"]
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("validating_files", "queued", "running")
FINAL_STATUSES: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")

PUBLIC_FIELDS = frozenset(
    "id created_at finished_at model fine_tuned_model organization_id status error hyperparameters method"
    " result_files seed trained_tokens training_file validation_file integrations metadata user_provided_suffix".split()
)
Auto = Literal["auto"]
Epochs = Annotated[int, Field(ge=1, le=50)]
BatchSize = Annotated[int, Field(ge=1, le=256)]
Multiplier = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SupervisedHyperparameters(_Strict):
    """Hyperparameters of supervised fine-tuning; ``"auto"`` lets the emulator choose."""

    n_epochs: Auto | Epochs = "auto"
    batch_size: Auto | BatchSize = "auto"
    learning_rate_multiplier: Auto | Multiplier = "auto"


class DpoHyperparameters(SupervisedHyperparameters):
    """Hyperparameters of DPO; ``beta`` is accepted and echoed (the emulator trains on the preferred output)."""

    beta: Auto | Annotated[float, Field(gt=0, le=2)] = "auto"


class SupervisedIn(_Strict):
    hyperparameters: SupervisedHyperparameters | None = None


class DpoIn(_Strict):
    hyperparameters: DpoHyperparameters | None = None


class MethodIn(_Strict):
    """``method`` of a job: supervised or dpo (reinforcement is refused by the emulator)."""

    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: SupervisedIn | None = None
    dpo: DpoIn | None = None
    reinforcement: dict[str, Any] | None = None


class WandbIn(BaseModel):
    project: str
    name: str | None = None
    entity: str | None = None
    tags: list[str] | None = None


class IntegrationIn(_Strict):
    type: Literal["wandb"]
    wandb: WandbIn


class JobCreate(_Strict):
    """Body of ``POST /v1/fine_tuning/jobs``."""

    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: SupervisedHyperparameters | None = None
    method: MethodIn | None = None
    suffix: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    seed: Annotated[int, Field(ge=0, le=2_147_483_647)] | None = None
    metadata: dict[str, str] | None = None
    integrations: list[IntegrationIn] | None = None

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > 16:
            raise ValueError("metadata may have at most 16 keys")
        for key, item in value.items():
            if len(key) > 64 or len(item) > 512:
                raise ValueError("metadata keys are at most 64 characters and values at most 512")
        return value


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class JobRecord(BaseModel):
    """One fine-tuning job as stored."""

    id: str
    created_at: int
    finished_at: int | None = None
    model: str
    fine_tuned_model: str | None = None
    organization_id: str
    status: JobStatus
    error: JobError | None = None
    hyperparameters: dict[str, Any]
    method: dict[str, Any]
    result_files: list[str] = Field(default_factory=list)
    seed: int
    trained_tokens: int | None = None
    training_file: str
    validation_file: str | None = None
    integrations: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None
    user_provided_suffix: str | None = None
    # Bookkeeping (not part of the API object).
    method_type: Literal["supervised", "dpo"] = "supervised"
    seconds_per_step: float
    phase_started: float
    steps_done: int = 0
    total_steps: int | None = None
    anchor_time: float | None = None
    anchor_steps: int = 0
    inject_failure: bool = False
    planned_model: str

    def estimated_finish(self) -> int | None:
        if self.total_steps is None or self.status not in ("queued", "running"):
            return None
        if self.status == "running" and self.anchor_time is not None:
            start, done = self.anchor_time, self.anchor_steps
        else:
            start, done = self.phase_started + self.seconds_per_step, self.steps_done
        return math.ceil(start + (self.total_steps - done) * self.seconds_per_step)

    def to_public(self) -> dict[str, Any]:
        """The ``fine_tuning.job`` object."""
        public = self.model_dump(include=set(PUBLIC_FIELDS))
        public["object"] = "fine_tuning.job"
        public["estimated_finish"] = self.estimated_finish()
        return public


def requested_hyperparameters(req: JobCreate) -> tuple[Literal["supervised", "dpo"], dict[str, Any]]:
    """The method type and its hyperparameters as requested (``"auto"`` where unset)."""
    method = req.method
    if method is not None and method.type == "dpo":
        dpo = method.dpo.hyperparameters if method.dpo and method.dpo.hyperparameters else None
        return "dpo", (dpo or DpoHyperparameters()).model_dump()
    supervised = None
    if method is not None and method.supervised is not None:
        supervised = method.supervised.hyperparameters
    return "supervised", (supervised or req.hyperparameters or SupervisedHyperparameters()).model_dump()


def method_object(method_type: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The job's ``method`` field for these hyperparameters."""
    return {"type": method_type, method_type: {"hyperparameters": dict(hyperparameters)}}
