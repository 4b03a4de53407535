"""Chat completions and embeddings at a provider for the service's own use (evaluation runs), in a
worker, through the sync `openai` client with the SDK's retries off. Failures come back sorted by
what to do about them (`service.providers.errors`): a 429 or 5xx is `ProviderUnavailable` with the
provider's Retry-After; a refusal is `ProviderRejected`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openai

from service.providers.errors import calling_provider


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True)
class ChatAnswer:
    """The first choice of a chat completion, and the tokens it cost."""

    model: str
    text: str
    finish_reason: str
    usage: Usage


class InferenceProvider:
    def __init__(self, name: str, client: openai.OpenAI) -> None:
        self.name = name
        self._client = client

    @calling_provider
    def chat(self, body: dict[str, Any]) -> ChatAnswer:
        """POST /chat/completions with `body` (`model`, `messages` and sampling parameters)."""
        completion = self._client.chat.completions.create(**body)
        choice = completion.choices[0]
        usage = completion.usage
        details = usage.prompt_tokens_details if usage is not None else None
        return ChatAnswer(
            model=completion.model,
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            usage=Usage(
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                total_tokens=usage.total_tokens if usage else 0,
                cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
            ),
        )

    @calling_provider
    def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], Usage]:
        """The embeddings of `texts`, in order."""
        answer = self._client.embeddings.create(model=model, input=texts)
        vectors = [item.embedding for item in sorted(answer.data, key=lambda item: item.index)]
        tokens = answer.usage.prompt_tokens if answer.usage is not None else 0
        return vectors, Usage(prompt_tokens=tokens, total_tokens=tokens)
