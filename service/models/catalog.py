"""Base models that can be fine-tuned (and called through the proxy), with their limits, and the
embedding models the proxy serves.

Training context limits follow OpenAI's fine-tuning guide; examples longer than the limit are
truncated by the provider. Encodings are tiktoken's for each model: `o200k_base` for the gpt-4o
and gpt-4.1 families, `cl100k_base` for gpt-3.5-turbo, gpt-4, babbage-002 and davinci-002.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class BaseModel:
    id: str
    kind: Literal["chat", "completion"]
    training_context: int
    encoding: Literal["o200k_base", "cl100k_base"]
    owned_by: str = "system"


BASE_MODELS: dict[str, BaseModel] = {
    model.id: model
    for model in (
        BaseModel("gpt-4o-mini-2024-07-18", "chat", 65_536, "o200k_base"),
        BaseModel("gpt-4o-2024-08-06", "chat", 65_536, "o200k_base"),
        BaseModel("gpt-4.1-2025-04-14", "chat", 65_536, "o200k_base"),
        BaseModel("gpt-4.1-mini-2025-04-14", "chat", 65_536, "o200k_base"),
        BaseModel("gpt-4.1-nano-2025-04-14", "chat", 65_536, "o200k_base"),
        BaseModel("gpt-3.5-turbo-0125", "chat", 16_385, "cl100k_base"),
        BaseModel("gpt-3.5-turbo-1106", "chat", 16_385, "cl100k_base"),
        BaseModel("babbage-002", "completion", 16_385, "cl100k_base"),
        BaseModel("davinci-002", "completion", 16_385, "cl100k_base"),
    )
}

# Models that answer `/v1/embeddings` on the default provider: callable by every tenant, listed
# beside the base models, never fine-tuned.
EMBEDDING_MODELS: tuple[str, ...] = (
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
)


def is_catalog_model(model: str) -> bool:
    """Whether `model` is a base or embedding model every tenant may call on the default provider."""
    return model in BASE_MODELS or model in EMBEDDING_MODELS


ENCODINGS = ("o200k_base", "cl100k_base")


def base_model_of(model: str) -> str:
    """`ft:gpt-4o-mini-2024-07-18:org:suffix:id` -> `gpt-4o-mini-2024-07-18`; a base name maps to itself."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model
