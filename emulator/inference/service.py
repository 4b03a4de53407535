"""Generating replies: the answer text, its truncation, token usage and the response objects.

Replies come from ``emulator.models.responder``; token usage is counted with the model's real
encoding.
"""

from __future__ import annotations

from typing import Any

from emulator.errors import InvalidRequest
from emulator.inference.streaming import Choice
from emulator.models.registry import ServedModel
from emulator.models.responder import answer
from emulator.tokens import Tokenizers

FINGERPRINT = "fp_emulator"


def reply(
    tokenizers: Tokenizers, served: ServedModel, question: str, max_tokens: int | None, stop: Any
) -> tuple[str, str, int]:
    """(text, finish_reason, completion tokens) of one reply."""
    text, finish = answer(question, served.base.kind, served.memory), "stop"
    for sequence in [stop] if isinstance(stop, str) else stop or []:
        if sequence and sequence in text:
            text = text[: text.index(sequence)]
    tokens = tokenizers.encode(served.base.encoding, text)
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        text, finish = tokenizers.decode(served.base.encoding, tokens), "length"
    return text, finish, len(tokens)


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The ``usage`` object, with OpenAI's detail fields."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def check_context(served: ServedModel, prompt_tokens: int, max_tokens: int | None, param: str) -> None:
    """Refuse a request that cannot fit the model's context window, as OpenAI words it."""
    limit = served.base.context_window
    if prompt_tokens + (max_tokens or 0) > limit:
        raise InvalidRequest(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{prompt_tokens + (max_tokens or 0)} tokens ({prompt_tokens} in the {param}). "
            "Please reduce the length of the messages or completion.",
            param=param,
            code="context_length_exceeded",
        )


def completion_prompts(
    tokenizers: Tokenizers, encoding: str, raw: str | list[str] | list[int] | list[list[int]]
) -> list[str]:
    """The prompts of a legacy completion: text, token ids, or lists of either, as text."""
    if isinstance(raw, str):
        return [raw]
    if raw and all(isinstance(p, int) for p in raw):
        return [tokenizers.decode(encoding, [int(p) for p in raw if isinstance(p, int)])]
    return [
        p if isinstance(p, str) else tokenizers.decode(encoding, p) for p in raw if not isinstance(p, int)
    ]


def rendered_choices(choices: list[Choice], *, chat: bool) -> list[dict[str, Any]]:
    """The ``choices`` of a whole (not streamed) chat or legacy completion."""
    if chat:
        return [
            {
                "index": c.index,
                "message": {"role": "assistant", "content": c.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
            for c in choices
        ]
    return [
        {"text": c.text, "index": c.index, "logprobs": None, "finish_reason": c.finish_reason}
        for c in choices
    ]
