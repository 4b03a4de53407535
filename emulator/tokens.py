"""Token counting with the offline ``bpe_openai`` encoders (tiktoken-compatible).

o200k_base for the gpt-4o / gpt-4.1 families, cl100k_base otherwise. Chat prompts are counted
the way OpenAI's cookbook does: 3 tokens per message, 1 more per ``name``, 3 to prime the reply.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Iterable, Sequence
from typing import Protocol, cast

# The encoder refuses strings of 1,000,000 characters or more; longer text is counted in pieces.
_MAX_PIECE = 500_000
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


class Encoder(Protocol):
    """What the emulator needs from a tiktoken-like encoding."""

    n_vocab: int

    def encode_ordinary(self, text: str) -> list[int]: ...

    def decode(self, tokens: Sequence[int]) -> str: ...


def _pieces(text: str) -> Iterable[str]:
    start = 0
    while start < len(text):
        end = min(len(text), start + _MAX_PIECE)
        if end < len(text):
            cut = text.rfind(" ", start + _MAX_PIECE // 2, end)
            end = cut if cut > start else end
        yield text[start:end]
        start = end


def _load(encoding: str) -> Encoder:
    # bpe_openai reads its data with importlib.resources.open_binary, which warns
    # (DeprecationWarning) on import and on every load; that is the library's business, not ours.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module("bpe_openai")
        return cast(Encoder, module.get_encoding(encoding))


class Tokenizers:
    """Loads each encoding once, on first use (importing and loading take ~0.2 s)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._encoders: dict[str, Encoder] = {}

    def get(self, encoding: str) -> Encoder:
        with self._lock:
            encoder = self._encoders.get(encoding)
            if encoder is None:
                encoder = _load(encoding)
                self._encoders[encoding] = encoder
            return encoder

    def encode(self, encoding: str, text: str) -> list[int]:
        """Token ids of ``text`` (special-token text is encoded as ordinary text)."""
        encoder = self.get(encoding)
        if len(text) < _MAX_PIECE:
            return encoder.encode_ordinary(text)
        tokens: list[int] = []
        for piece in _pieces(text):
            tokens.extend(encoder.encode_ordinary(piece))
        return tokens

    def count(self, encoding: str, text: str) -> int:
        return len(self.encode(encoding, text)) if text else 0

    def decode(self, encoding: str, tokens: Sequence[int]) -> str:
        return self.get(encoding).decode(list(tokens))

    def count_chat(self, encoding: str, messages: Sequence[tuple[str, str, str | None]]) -> int:
        """Prompt tokens of (role, text, name) messages, cookbook style."""
        total = REPLY_PRIMING_TOKENS
        for role, text, name in messages:
            total += TOKENS_PER_MESSAGE + self.count(encoding, role) + self.count(encoding, text)
            if name:
                total += TOKENS_PER_NAME + self.count(encoding, name)
        return total
