"""Server-sent events for ``stream=true``: the reply split into word-sized chunks.

Chunks follow OpenAI's wire format: ``data: {json}\\n\\n`` per chunk, then ``data: [DONE]``. Chat
streams open with the assistant role, carry the text in ``delta.content``, close with an empty
delta and the finish reason, and (with ``stream_options.include_usage``) add a last chunk with no
choices and the usage, every earlier chunk carrying ``"usage": null``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class Choice:
    """One generated reply."""

    index: int
    text: str
    finish_reason: str


def split_words(text: str) -> list[str]:
    """Pieces whose concatenation is exactly ``text``, each a word with its leading whitespace."""
    pieces = _WORD.findall(text)
    rest = text[len("".join(pieces)) :]
    return [*pieces, rest] if rest else pieces


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def stream_chunks(
    *,
    head: dict[str, Any],
    choices: Sequence[Choice],
    usage: dict[str, Any] | None,
    chat: bool,
    delay_s: float,
    sleep: Callable[[float], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed chat completion (``chat``) or legacy completion.

    ``sleep`` waits ``delay_s`` before each piece of text (the emulator's clock).
    """
    base = dict(head)
    if usage is not None:
        base["usage"] = None

    def chunk(index: int, text: str | None, finish: str | None, *, first: bool = False) -> dict[str, Any]:
        if chat:
            delta: dict[str, Any] = {}
            if first:
                delta = {"role": "assistant", "content": "", "refusal": None}
            elif text is not None:
                delta = {"content": text}
            choice: dict[str, Any] = {
                "index": index,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish,
            }
        else:
            choice = {"text": text or "", "index": index, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    for choice in choices:
        if chat:
            yield _sse(chunk(choice.index, None, None, first=True))
        for piece in split_words(choice.text):
            if delay_s:
                await sleep(delay_s)
            yield _sse(chunk(choice.index, piece, None))
        yield _sse(chunk(choice.index, None, choice.finish_reason))
    if usage is not None:
        yield _sse({**head, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"
