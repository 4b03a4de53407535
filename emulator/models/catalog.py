"""The base models the emulator serves and fine-tunes, with their context limits.

Embedding models are served (``/v1/embeddings``) but not fine-tuned. Figures follow OpenAI's
fine-tuning guide (inference context / training example context);
``encoding`` picks the tokenizer used for usage and training-token counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["chat", "completion"]


@dataclass(frozen=True)
class BaseModelInfo:
    """One fine-tunable base model."""

    id: str
    kind: Kind
    encoding: str
    context_window: int
    training_context: int
    created: int


BASE_MODELS: tuple[BaseModelInfo, ...] = (
    BaseModelInfo("gpt-4o-mini-2024-07-18", "chat", "o200k_base", 128_000, 65_536, 1721172717),
    BaseModelInfo("gpt-4o-2024-08-06", "chat", "o200k_base", 128_000, 65_536, 1722814719),
    BaseModelInfo("gpt-4.1-2025-04-14", "chat", "o200k_base", 1_047_576, 65_536, 1744316542),
    BaseModelInfo("gpt-4.1-mini-2025-04-14", "chat", "o200k_base", 1_047_576, 65_536, 1744317547),
    BaseModelInfo("gpt-4.1-nano-2025-04-14", "chat", "o200k_base", 1_047_576, 65_536, 1744321025),
    BaseModelInfo("gpt-3.5-turbo-0125", "chat", "cl100k_base", 16_385, 16_385, 1706048358),
    BaseModelInfo("gpt-3.5-turbo-1106", "chat", "cl100k_base", 16_385, 16_385, 1698959748),
    BaseModelInfo("babbage-002", "completion", "cl100k_base", 16_384, 16_384, 1692634615),
    BaseModelInfo("davinci-002", "completion", "cl100k_base", 16_384, 16_384, 1692634301),
)

ALIASES: tuple[tuple[str, str], ...] = (
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("gpt-4o", "gpt-4o-2024-08-06"),
    ("gpt-4.1", "gpt-4.1-2025-04-14"),
    ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
    ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),
    ("gpt-3.5-turbo", "gpt-3.5-turbo-0125"),
)


@dataclass(frozen=True)
class EmbeddingModel:
    """An embedding model the emulator serves."""

    id: str
    dimensions: int
    shortenable: bool  # whether `dimensions` may ask for a shorter vector
    created: int
    encoding: str = "cl100k_base"
    max_input_tokens: int = 8191


EMBEDDING_MODELS: dict[str, EmbeddingModel] = {
    model.id: model
    for model in (
        EmbeddingModel("text-embedding-3-small", 1536, True, 1705948997),
        EmbeddingModel("text-embedding-3-large", 3072, True, 1705953180),
        EmbeddingModel("text-embedding-ada-002", 1536, False, 1671217299),
    )
}


def find_base_model(name: str) -> BaseModelInfo | None:
    """The base model called ``name`` (a snapshot or an alias such as ``gpt-4o-mini``), if any."""
    target = dict(ALIASES).get(name, name)
    return next((info for info in BASE_MODELS if info.id == target), None)


def listed_base_model_ids() -> list[tuple[str, int]]:
    """(id, created) of every base model and alias, as ``GET /v1/models`` lists them."""
    rows = [(info.id, info.created) for info in BASE_MODELS]
    for alias, target in ALIASES:
        info = find_base_model(target)
        if info is not None:
            rows.append((alias, info.created))
    rows += [(model.id, model.created) for model in EMBEDDING_MODELS.values()]
    return rows


def base_of_fine_tuned(name: str) -> str | None:
    """The base snapshot inside an ``ft:{base}:{org}:{suffix}:{id}`` name."""
    if not name.startswith("ft:"):
        return None
    parts = name.split(":")
    return parts[1] if len(parts) >= 5 else None
