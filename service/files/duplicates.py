"""Exact and near-duplicate examples, and the overlap of a training and a validation file.

An example's exact fingerprint is a 64-bit hash of its canonical JSON (sorted keys), so the same
example written with other spacing or key order is still the same. Its near fingerprint hashes
only its text (every message's role and content, tool calls included, or the prompt and the
completion), case-folded, NFKC-normalised, with ASCII punctuation and runs of spaces collapsed: the
same conversation up to case, spacing and punctuation. Fingerprints are kept as ints with the
line they were first seen on (about 100 bytes per example).
"""

from __future__ import annotations

import hashlib
import json
import string
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from service.files.checks import Problem, shape_of

# ASCII punctuation becomes a space. Done on UTF-8 bytes, where it is one table lookup per byte
# (an ASCII byte never occurs inside a multi-byte character); str.translate was 10x slower.
_PUNCTUATION = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))
FIRST_LINES = 10


def _hash_bytes(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _hash(text: str) -> int:
    return _hash_bytes(text.encode("utf-8", "surrogatepass"))


_TEXT_KEYS = frozenset(
    {"messages", "input", "preferred_output", "non_preferred_output", "role", "content", "text", "name"}
    | {"prompt", "completion", "tool_calls", "function_call", "function", "arguments"}
)


def _texts(value: Any) -> Iterator[str]:
    """Every string of an example's conversation, in order (ids, types, weights and tool
    definitions left out)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in _TEXT_KEYS:
                yield from _texts(item)


def exact_fingerprint(record: dict[str, Any]) -> int:
    return _hash(json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def fingerprint_of_line(line: bytes) -> int:
    """The exact fingerprint of an example already written as canonical JSON (one key order)."""
    return _hash_bytes(line)


def near_fingerprint(record: dict[str, Any]) -> int:
    text = " ".join(_texts(record))
    folded = unicodedata.normalize("NFKC", text).casefold().encode("utf-8", "surrogatepass")
    return _hash_bytes(b" ".join(folded.translate(_PUNCTUATION).split()))


class DuplicateFinder:
    """Warns about each example that repeats an earlier one, naming the earlier line."""

    def __init__(self) -> None:
        self._exact: dict[int, int] = {}
        self._near: dict[int, int] = {}

    def add(self, line: int, record: dict[str, Any]) -> Problem | None:
        try:
            exact = exact_fingerprint(record)
            near = near_fingerprint(record)
        except RecursionError:  # a tool schema nested as deep as the JSON reader allows
            return None
        first = self._exact.setdefault(exact, line)
        first_near = self._near.setdefault(near, line)
        if first != line:
            return Problem("duplicate_example", f"the same example as line {first}.", warning=True)
        if first_near != line:
            return Problem(
                "near_duplicate_example",
                f"the same text as line {first_near}, up to case, spacing and punctuation.",
                warning=True,
            )
        return None


@dataclass
class Overlap:
    """Validation examples whose text (near fingerprint) is also in the training file."""

    examples: int = 0
    first_lines: list[int] = field(default_factory=list)


def _fingerprints(lines: Iterable[bytes]) -> Iterator[tuple[int, int]]:
    """(line, near fingerprint) of each readable example (the validation report has the rest)."""
    for number, raw in enumerate(lines, start=1):
        try:
            record = json.loads(raw.removeprefix(b"\xef\xbb\xbf"))
            if isinstance(record, dict) and shape_of(record) is not None:
                yield number, near_fingerprint(record)
        except (ValueError, RecursionError):
            continue


def overlap(training: Iterable[bytes], validation: Iterable[bytes]) -> Overlap:
    """Stream both files once: the training file's fingerprints, then the validation file's lines."""
    seen = {fingerprint for _, fingerprint in _fingerprints(training)}
    found = Overlap()
    for number, fingerprint in _fingerprints(validation):
        if fingerprint in seen:
            found.examples += 1
            if len(found.first_lines) < FIRST_LINES:
                found.first_lines.append(number)
    return found
