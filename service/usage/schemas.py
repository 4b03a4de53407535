"""Shapes of `GET /v1/usage`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class UsageBucket(BaseModel):
    """What one key used of one model (through one deployment version, or directly) in one period."""

    object: Literal["usage.bucket"] = "usage.bucket"
    start_time: int = Field(description="The period's start (unix seconds, UTC), inclusive.")
    end_time: int = Field(description="The period's end (unix seconds, UTC), exclusive.")
    key_id: str = Field(description="The API key that made the requests.")
    deployment: str | None = Field(description="The deployment the requests named; null: a model directly.")
    deployment_version: int | None = Field(description="The deployment's version that routed them.")
    model: str = Field(description="The model that answered (for a deployment: its arm or fallback).")
    provider: str = Field(description="The provider that served them; empty when refused before routing.")
    requests: int
    errors: int = Field(description="Requests answered with an error status (4xx/5xx, 429s included).")
    input_tokens: int
    output_tokens: int
    latency_ms_avg: float = Field(description="Mean time to the end of the answer, in milliseconds.")
    cost_usd: float | None = Field(
        description="At the provider's price for this model (fine-tuned models at their fine-tuned "
        "price); null when the price is not known."
    )


class UsageList(BaseModel):
    object: Literal["list"] = "list"
    group_by: Literal["day", "hour"]
    data: list[UsageBucket]
