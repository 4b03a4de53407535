"""What providers answer, as small value types the service owns.

Only `service/providers/` knows the `openai` SDK: it turns the SDK's objects into these, so the
rest of the service depends on the fields it uses, not on a library's classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RemoteJob:
    """A fine-tuning job at the provider."""

    id: str
    status: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    estimated_finish: int | None = None  # Unix seconds
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # only the resolved ones
    result_files: tuple[str, ...] = ()
    error: dict[str, Any] | None = None  # {"code", "message", "param"}
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteEvent:
    id: str
    created_at: int
    level: str
    message: str
    type: str = "message"
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class RemoteCheckpoint:
    id: str
    created_at: int
    fine_tuned_model_checkpoint: str
    step_number: int
    metrics: dict[str, Any]


@dataclass(frozen=True)
class UpstreamResponse:
    """A provider's answer to a relayed inference request: its status, the headers to pass on,
    and its body, either whole (`content`) or as a stream of chunks (`chunks`) that must be
    closed with `close` however the relay ends (it frees the provider connection at once)."""

    status: int
    headers: dict[str, str]
    media_type: str | None
    content: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    close: Callable[[], None] | None = None
