"""The models API's objects, in OpenAI's shapes (`openai.types.Model`, `ModelDeleted`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.models.service import ModelRoute

_SNAPSHOT_DATE = re.compile(r"-(\d{4})-(\d{2})-(\d{2})$")


class Model(BaseModel):
    """A model the caller may use: one of its tenant's fine-tuned models or a base model."""

    id: str = Field(description="The model's name, e.g. `ft:gpt-4o-mini-2024-07-18:acme:support:abc123`.")
    object: Literal["model"] = Field(default="model", description='Always `"model"`.')
    created: int = Field(
        description="Unix time (seconds) the fine-tuned model was made; for a base model, its snapshot "
        "date (0 when its name carries none)."
    )
    owned_by: str = Field(
        description='The owning tenant\'s name for a fine-tuned model; `"system"` for a base model.'
    )

    deployment_version: int | None = Field(
        default=None,
        description="Only on a deployment (a name that routes to models): its current version.",
    )

    @classmethod
    def from_route(cls, route: ModelRoute) -> Model:
        return cls(id=route.model, created=_created(route), owned_by=route.owned_by)


class ModelList(BaseModel):
    """The caller's fine-tuned models (newest first), its deployments (newest first), then the base
    models."""

    object: Literal["list"] = "list"
    data: list[Model]


class ModelDeleted(BaseModel):
    """The answer to deleting a fine-tuned model."""

    id: str = Field(description="The deleted model's name.")
    object: Literal["model"] = Field(default="model", description='Always `"model"`.')
    deleted: bool = Field(default=True, description="Always `true`: the model is deleted.")


def _created(route: ModelRoute) -> int:
    if route.created_at is not None:
        return int(route.created_at.timestamp())
    match = _SNAPSHOT_DATE.search(route.model)
    if match is None:
        return 0
    year, month, day = (int(part) for part in match.groups())
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())
