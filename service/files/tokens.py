"""Token counts of training examples with each base model's own encoding, offline.

The encodings come from `bpe_openai`, which ships the `o200k_base` and `cl100k_base` BPE files
(the same files tiktoken downloads, same ids), so nothing is fetched at run time. Text is encoded
as ordinary text, as fine-tuning does. The chat framing follows OpenAI's cookbook: 3 tokens per
message, 1 more per `name`, 3 to prime the reply; tool calls and tool definitions are counted as
their JSON text; an image counts 85 tokens (its `detail: low` cost, the least it can be).
"""

from __future__ import annotations

import functools
import importlib
import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
TOKENS_PER_IMAGE = 85
# bpe_openai refuses strings of 1,000,000 characters or more; longer text is counted in pieces.
_MAX_PIECE = 500_000
SHORT_TEXT = 64
SHORT_CACHE_ENTRIES = 4_096


class Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@functools.cache
def get_encoding(name: str) -> Encoding:
    """The encoding `name`, loaded once per process (about 0.05 s)."""
    # bpe_openai reads its data with a deprecated importlib.resources call; that warning is its own.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module("bpe_openai")
        return cast(Encoding, module.get_encoding(name))


def _pieces(text: str) -> Iterable[str]:
    start = 0
    while start < len(text):
        end = min(len(text), start + _MAX_PIECE)
        if end < len(text):
            cut = text.rfind(" ", start + _MAX_PIECE // 2, end)
            end = cut if cut > start else end
        yield text[start:end]
        start = end


def count_text(encoding: Encoding, text: str) -> int:
    if not text:
        return 0
    if len(text) < _MAX_PIECE:
        return len(encoding.encode_ordinary(text))
    return sum(len(encoding.encode_ordinary(piece)) for piece in _pieces(text))


@dataclass(frozen=True)
class ExampleTokens:
    total: int
    trained: int


class ExampleCounter:
    """Counts the tokens of one valid example (any format) with one encoding."""

    def __init__(self, encoding: Encoding) -> None:
        self.encoding = encoding
        # Roles repeat in every message, system prompts in many examples: count each once.
        self._short: dict[str, int] = {}

    def _text(self, text: str) -> int:
        if len(text) > SHORT_TEXT:
            return count_text(self.encoding, text)
        counted = self._short.get(text)
        if counted is None:
            counted = count_text(self.encoding, text)
            if len(self._short) < SHORT_CACHE_ENTRIES:
                self._short[text] = counted
        return counted

    def _content(self, content: Any) -> int:
        if isinstance(content, str):
            return self._text(content)
        if isinstance(content, list):
            total = 0
            for part in content:
                if part.get("type") == "text":
                    total += self._text(part["text"])
                else:
                    total += TOKENS_PER_IMAGE
            return total
        return 0

    def _calls(self, message: dict[str, Any]) -> int:
        total = 0
        for call in message.get("tool_calls") or ():
            total += self._text(call["function"]["name"]) + self._text(call["function"]["arguments"])
        call = message.get("function_call")
        if call:
            total += self._text(call["name"]) + self._text(call["arguments"])
        return total

    def message(self, message: dict[str, Any]) -> tuple[int, int]:
        """(framed tokens, the part that is the message's own content and calls)."""
        own = self._content(message.get("content")) + self._calls(message)
        framed = TOKENS_PER_MESSAGE + self._text(message["role"]) + own
        if message.get("name"):
            framed += TOKENS_PER_NAME + self._text(message["name"])
        return framed, own

    def _definitions(self, record: dict[str, Any]) -> int:
        total = 0
        for key in ("tools", "functions"):
            if record.get(key):
                total += self._text(json.dumps(record[key], separators=(",", ":")))
        return total

    def _chat(self, record: dict[str, Any]) -> ExampleTokens:
        total = REPLY_PRIMING_TOKENS + self._definitions(record)
        trained = 0
        for message in record["messages"]:
            framed, own = self.message(message)
            total += framed
            if message["role"] == "assistant" and message.get("weight", 1) == 1:
                trained += own
        return ExampleTokens(total, trained)

    def count(self, shape: str, record: dict[str, Any]) -> ExampleTokens:
        if shape == "chat":
            return self._chat(record)
        if shape == "completion":
            completion = self._text(record["completion"])
            return ExampleTokens(self._text(record["prompt"]) + completion, completion)
        prompt = self._chat(record["input"]).total
        outputs = [
            self.message(out[0]) for out in (record["preferred_output"], record["non_preferred_output"])
        ]
        return ExampleTokens(prompt + sum(framed for framed, _ in outputs), sum(own for _, own in outputs))
