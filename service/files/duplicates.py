"""Exact and near-duplicate examples, and the overlap of a training and a validation file.

An example's exact fingerprint is a 64-bit hash of its canonical JSON (sorted keys), so the same
example written with other spacing or key order is still the same. Its near fingerprint hashes
only its text (the roles and names, then every content, tool call, prompt and completion, as
`service.files.tokens.ExampleText` reads them; ids, types, weights and tool definitions left out),
case-folded, NFKC-normalised, with ASCII punctuation and spaces left out: the same conversation
up to case, spacing and punctuation. Fingerprints are kept as ints with the line they
were first seen on (about 100 bytes per example).
"""

from __future__ import annotations

import json
import string
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from service.files.checks import Problem, shape_of
from service.files.tokens import ExampleText, example_text

# ASCII capitals become small letters; ASCII punctuation and spaces are left out. Done on UTF-8
# bytes, where it is one table lookup per byte (an ASCII byte never occurs inside a multi-byte
# character): str.translate was 10x slower, and collapsing runs of spaces with split() and join()
# took as long as the rest of the fingerprint.
_ASCII_LOWER = bytes.maketrans(string.ascii_uppercase.encode(), string.ascii_lowercase.encode())
_ASCII_DROPPED = (string.punctuation + string.whitespace).encode()
FIRST_LINES = 10
_EXACT_BITS = (1 << 64) - 1
_LINE_BITS = 40
_LINE_MASK = (1 << _LINE_BITS) - 1


# Fingerprints are compared within one process only (one validation, one overlap), so Python's
# own 64-bit hash serves, at a tenth of a cryptographic hash's cost.
def exact_fingerprint(record: dict[str, Any]) -> int:
    return hash(json.dumps(record, sort_keys=True, separators=(",", ":")))


def near_fingerprint(text: ExampleText) -> int:
    joined = " ".join(text.labels) + " " + " ".join(text.own)
    if joined.isascii():  # NFKC leaves ASCII as it is, and its case-folding is lower()
        folded = joined.encode("ascii")
    else:
        folded = unicodedata.normalize("NFKC", joined).casefold().encode("utf-8", "surrogatepass")
    return hash(folded.translate(_ASCII_LOWER, _ASCII_DROPPED))


class DuplicateFinder:
    """Warns about each example that repeats an earlier one, naming the earlier line."""

    def __init__(self) -> None:
        # near fingerprint -> the first such example's exact fingerprint and line, packed in one
        # int: one dict entry per distinct text (about 120 bytes), where two dicts took 200. An
        # example is compared with the first example of its text only (an exact copy of a later
        # near duplicate is reported as a near duplicate of the first).
        self._first: dict[int, int] = {}

    def add(self, line: int, record: dict[str, Any], text: ExampleText) -> Problem | None:
        try:
            exact = exact_fingerprint(record) & _EXACT_BITS
        except RecursionError:  # a tool schema nested as deep as the JSON reader allows
            return None
        first = self._first.setdefault(near_fingerprint(text), exact << _LINE_BITS | line)
        first_line = first & _LINE_MASK
        if first_line == line:
            return None
        if first >> _LINE_BITS == exact:
            return Problem("duplicate_example", f"the same example as line {first_line}.", warning=True)
        return Problem(
            "near_duplicate_example",
            f"the same text as line {first_line}, up to case, spacing and punctuation.",
            warning=True,
        )


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
            shape = shape_of(record) if isinstance(record, dict) else None
            if shape is not None:
                yield number, near_fingerprint(example_text(shape, record))
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            continue  # not a valid example: its own file's validation report says why


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
