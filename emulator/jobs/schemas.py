"""Bodies of the fine-tuning jobs API: ``POST /v1/fine_tuning/jobs`` and its parts, as OpenAI takes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
