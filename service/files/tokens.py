"""Token counts of training examples with each base model's own encoding, offline.

The encodings come from `bpe_openai`, which ships the `o200k_base` and `cl100k_base` BPE files
(the same files tiktoken downloads, same ids), so nothing is fetched at run time. Text is counted
as ordinary text, as fine-tuning does, with the tokenizer's own `count` (no token list is built;
the counts equal tiktoken's, which the tests check). The chat framing follows OpenAI's cookbook:
3 tokens per message, 1 more per `name`, 3 to prime the reply; tool calls and tool definitions are
counted as their JSON text; an image counts 85 tokens (its `detail: low` cost, the least it can be).

An example is read once into its `ExampleText` (the texts in order, which are trained, the
framing); each encoding then only counts those texts, and the near-duplicate fingerprint and the
personal-data scan read the same texts.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
TOKENS_PER_IMAGE = 85
# bpe_openai refuses strings of 1,000,000 characters or more; longer text is counted in pieces.
_MAX_PIECE = 500_000
SHORT_TEXT = 2_048
SHORT_CACHE_ENTRIES = 4_096
# A message of only these keys with a string content is read without `ExampleText.message`.
_ROLE_AND_CONTENT = frozenset({"role", "content"})


class Encoding(Protocol):
    def count(self, text: str) -> int: ...


BINDINGS = "bpe_openai._bindings"


def _bindings() -> Any:
    """bpe_openai's compiled tokenizers, loaded without running the package's Python wrapper.

    Importing `bpe_openai` builds its tiktoken-compatible tables as Python dicts (about 150 MB
    of peak memory, on top of the tokenizers' own 100); only the compiled `count` is needed here.
    The module is registered under its own name, so a later `import bpe_openai` uses it as well."""
    loaded = sys.modules.get(BINDINGS)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("bpe_openai")
    if package is None or not package.submodule_search_locations:
        raise ImportError("bpe_openai is not installed")
    for folder in package.submodule_search_locations:
        for path in sorted(Path(folder).glob("_bindings*.so")) + sorted(Path(folder).glob("_bindings*.pyd")):
            spec = importlib.util.spec_from_file_location(BINDINGS, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[BINDINGS] = module
            return module
    # No compiled module beside the package (an unusual build): import it the ordinary way.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # bpe_openai's own importlib.resources use
        return importlib.import_module(BINDINGS)


@functools.cache
def get_encoding(name: str) -> Encoding:
    """The encoding `name`'s tokenizer, loaded once per process (about 0.05 s)."""
    return cast(Encoding, _bindings().tokenizer_for_encoding(name))


def _pieces(text: str) -> Iterable[str]:
    start = 0
    while start < len(text):
        end = min(len(text), start + _MAX_PIECE)
        if end < len(text):
            cut = text.rfind(" ", start + _MAX_PIECE // 2, end)
            end = cut if cut > start else end
        yield text[start:end]
        start = end


def _count(encoding: Encoding, text: str) -> int:
    try:
        return encoding.count(text)
    except UnicodeEncodeError:  # a lone surrogate (JSON allows "\ud800"): counted as U+FFFD, as tiktoken does
        return encoding.count(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))


def count_text(encoding: Encoding, text: str) -> int:
    if not text:
        return 0
    if len(text) < _MAX_PIECE:
        return _count(encoding, text)
    return sum(_count(encoding, piece) for piece in _pieces(text))


@dataclass(frozen=True)
class ExampleTokens:
    total: int
    trained: int


@dataclass
class ExampleText:
    """A valid example's texts as token counting sees them, whatever the encoding.

    `framing` is the tokens that are the same in every encoding (per message, per name, priming,
    images); `labels` the roles and names; `own` the contents, calls, prompts and completions, with
    `trained` telling which of them are trained; `definitions` the tools' and functions' JSON."""

    framing: int = 0
    labels: list[str] = field(default_factory=list)
    own: list[str] = field(default_factory=list)
    trained: list[bool] = field(default_factory=list)
    definitions: list[str] = field(default_factory=list)

    def _content(self, content: Any, trained: bool) -> None:
        if isinstance(content, str):
            self.own.append(content)
            self.trained.append(trained)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    self.own.append(part["text"])
                    self.trained.append(trained)
                else:
                    self.framing += TOKENS_PER_IMAGE

    def _calls(self, message: dict[str, Any], trained: bool) -> None:
        for call in message.get("tool_calls") or ():
            self.own += (call["function"]["name"], call["function"]["arguments"])
            self.trained += (trained, trained)
        call = message.get("function_call")
        if call:
            self.own += (call["name"], call["arguments"])
            self.trained += (trained, trained)

    def message(self, message: dict[str, Any], trained: bool) -> None:
        self.framing += TOKENS_PER_MESSAGE
        self.labels.append(message["role"])
        if message.get("name"):
            self.framing += TOKENS_PER_NAME
            self.labels.append(message["name"])
        content = message.get("content")
        if type(content) is str:  # most messages: one text, no calls (read once per line)
            self.own.append(content)
            self.trained.append(trained)
        else:
            self._content(content, trained)
        if "tool_calls" in message or "function_call" in message:
            self._calls(message, trained)

    def chat(self, record: dict[str, Any]) -> None:
        self.framing += REPLY_PRIMING_TOKENS
        for key in ("tools", "functions"):
            if record.get(key):
                self.definitions.append(json.dumps(record[key], separators=(",", ":")))
        for message in record["messages"]:
            role = message["role"]
            content = message.get("content")
            if type(content) is str and message.keys() <= _ROLE_AND_CONTENT:  # most messages
                self.framing += TOKENS_PER_MESSAGE
                self.labels.append(role)
                self.own.append(content)
                self.trained.append(role == "assistant")
                continue
            self.message(message, role == "assistant" and message.get("weight", 1) == 1)


def example_text(shape: str, record: dict[str, Any]) -> ExampleText:
    """The texts of a valid example of `shape` (`chat`, `completion` or `preference`)."""
    text = ExampleText()
    if shape == "chat":
        text.chat(record)
    elif shape == "completion":
        text.own += (record["prompt"], record["completion"])
        text.trained += (False, True)
    else:
        text.chat(record["input"])
        for key in ("preferred_output", "non_preferred_output"):
            text.message(record[key][0], True)
    return text


class ExampleCounter:
    """Counts the tokens of valid examples with one encoding."""

    def __init__(self, encoding: Encoding) -> None:
        self.encoding = encoding
        # Roles repeat in every message, system prompts in many examples: count each once (the
        # first texts up to 2,048 characters are kept; hashing one costs far less than counting it).
        self._short: dict[str, int] = {}

    def _text(self, text: str) -> int:
        if len(text) > SHORT_TEXT:
            return count_text(self.encoding, text)
        counted = self._short.get(text)
        if counted is None:
            counted = self._miss(text)
        return counted

    def _miss(self, text: str) -> int:
        """Count a text not in the cache, keeping it when it is short and there is room."""
        counted = count_text(self.encoding, text)
        if len(text) <= SHORT_TEXT and len(self._short) < SHORT_CACHE_ENTRIES:
            self._short[text] = counted
        return counted

    def tokens(self, text: ExampleText) -> tuple[int, int]:
        """The example's total and trained tokens (`tally` without its object, for the file's
        tallies: the cache is looked up inline, as the lookups are most of the calls)."""
        short = self._short
        total = text.framing
        for label in text.labels:
            counted = short.get(label)
            total += self._miss(label) if counted is None else counted
        for definition in text.definitions:
            total += self._text(definition)
        trained = 0
        for own, is_trained in zip(text.own, text.trained, strict=True):
            tokens = short.get(own) if len(own) <= SHORT_TEXT else None
            if tokens is None:
                tokens = self._miss(own)
            total += tokens
            if is_trained:
                trained += tokens
        return total, trained

    def tally(self, text: ExampleText) -> ExampleTokens:
        return ExampleTokens(*self.tokens(text))

    def count(self, shape: str, record: dict[str, Any]) -> ExampleTokens:
        return self.tally(example_text(shape, record))
