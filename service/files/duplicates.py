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
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.files.checks import Problem, shape_of
from service.files.parsing import is_plain
from service.files.tokens import ExampleText, example_text

# ASCII capitals become small letters; ASCII punctuation and spaces are left out. Done on UTF-8
# bytes, where it is one table lookup per byte (an ASCII byte never occurs inside a multi-byte
# character): str.translate was 10x slower, and collapsing runs of spaces with split() and join()
# took as long as the rest of the fingerprint.
_ASCII_LOWER = bytes.maketrans(string.ascii_uppercase.encode(), string.ascii_lowercase.encode())
_ASCII_DROPPED = (string.punctuation + string.whitespace).encode()
FIRST_LINES = 10
_BITMAP_BITS = 1 << 26
_BITMAP_BYTES = _BITMAP_BITS // 8
_BITMAP_MASK = _BITMAP_BITS - 1
# json.dumps(record, sort_keys=True, separators=(",", ":")), with one encoder for every example
# (json.dumps builds a new one per call when given options, a third of its cost on short lines).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
# The message keys whose values a valid example holds as a string, null or a 0/1 weight.
_SCALAR_KEYS = frozenset({"role", "content", "name", "weight", "tool_call_id", "refusal"})


# Fingerprints are compared within one process only (one validation, one overlap), so Python's
# own 64-bit hash serves, at a tenth of a cryptographic hash's cost.
def exact_fingerprint(record: dict[str, Any], plain: bool | None = None) -> int:
    """A hash of the record's value, whatever its key order and spacing.

    A plain chat example (`service.files.parsing.is_plain`: string roles and contents only, most
    of them) is hashed as orjson writes it with sorted keys, a third of the cost of the tuples
    below; one with a lone surrogate, which orjson does not write, as those tuples. Otherwise, a
    chat example whose messages hold only the keys validation types as strings, null or a
    weight (most of them: no content parts, no tool calls) is hashed as its messages' sorted
    items, without writing it out as JSON (a quarter of the cost). Which way a record is hashed
    depends on its value alone, so equal records always get the same fingerprint, and for valid
    examples equal tuples mean equal JSON (a weight is 0 or 1, never true, false or 1.0).
    `plain` is `is_plain(record)` when the caller knows it already (the line's reader does)."""
    if is_plain(record) if plain is None else plain:
        try:
            return hash(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        except orjson.JSONEncodeError:  # a lone surrogate: hashed as its items below
            pass
    messages = record.get("messages")
    if len(record) == 1 and type(messages) is list:
        try:
            if all(message.keys() <= _SCALAR_KEYS for message in messages):
                return hash(tuple([tuple(sorted(message.items())) for message in messages]))
        except (TypeError, AttributeError):  # a content list, or a message that is no object
            pass
    return hash(_CANONICAL.encode(record))


def fingerprint_of_line(line: bytes) -> int:
    """The exact fingerprint of an example already written as canonical JSON (one key order)."""
    return hash(line)


def near_fingerprint(text: ExampleText) -> int:
    joined = " ".join(text.labels) + " " + " ".join(text.own)
    if joined.isascii():  # NFKC leaves ASCII as it is, and its case-folding is lower()
        folded = joined.encode("ascii")
    else:
        folded = unicodedata.normalize("NFKC", joined).casefold().encode("utf-8", "surrogatepass")
    return hash(folded.translate(_ASCII_LOWER, _ASCII_DROPPED))


class DuplicateFinder:
    """Finds the examples that repeat an earlier one, naming the earlier line.

    Memory stays at about 20 bytes per example, so a file of millions fits: each example's near
    and exact fingerprints and line go into compact arrays, and a bitmap (2 bits per fingerprint,
    8 MB) remembers which near fingerprints were possibly seen before. At the end, only those
    suspects (the repeats, and the bitmap's rare false alarms) are looked at again, in one pass
    over the arrays; an example is compared with the first example of its text."""

    def __init__(self) -> None:
        self._near = array("q")
        self._exact = array("q")
        self._lines = array("I")
        self._seen = bytearray()
        self._suspects: set[int] = set()

    def add(self, line: int, record: dict[str, Any], text: ExampleText, plain: bool | None = None) -> None:
        try:
            exact = exact_fingerprint(record, plain)
        except RecursionError:  # a tool schema nested as deep as the JSON reader allows
            return
        near = near_fingerprint(text)
        if not self._seen:
            self._seen = bytearray(_BITMAP_BYTES)
        first, second = near & _BITMAP_MASK, (near >> 32) & _BITMAP_MASK
        seen = self._seen
        if seen[first >> 3] & (1 << (first & 7)) and seen[second >> 3] & (1 << (second & 7)):
            self._suspects.add(near)
        seen[first >> 3] |= 1 << (first & 7)
        seen[second >> 3] |= 1 << (second & 7)
        self._near.append(near)
        self._exact.append(exact)
        self._lines.append(line)

    def problems(self) -> list[tuple[int, Problem]]:
        """Each repeating example's line and warning, in line order."""
        found: list[tuple[int, Problem]] = []
        if not self._suspects:
            return found
        firsts: dict[int, tuple[int, int]] = {}
        suspects = self._suspects
        for index, near in enumerate(self._near):
            if near not in suspects:
                continue
            line, exact = self._lines[index], self._exact[index]
            first = firsts.setdefault(near, (line, exact))
            if first[0] == line:
                continue
            if first[1] == exact:
                found.append(
                    (line, Problem("duplicate_example", f"the same example as line {first[0]}.", True))
                )
            else:
                message = f"the same text as line {first[0]}, up to case, spacing and punctuation."
                found.append((line, Problem("near_duplicate_example", message, True)))
        return found


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
