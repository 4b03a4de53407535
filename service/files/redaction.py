"""The redacted copy of a file uploaded with `personal_data=redact`: every finding in the texts an
example trains on (contents, text parts, tool call arguments, prompts, completions, names) becomes
`[REDACTED:<kind>]`; every other line is copied byte for byte. The original is never changed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from service.files.names import clean_filename
from service.files.personal import PersonalDataScanner

REDACTED_KEYS = frozenset({"content", "text", "arguments", "prompt", "completion", "name"})


def _redact(value: Any, scanner: PersonalDataScanner) -> Any:
    if isinstance(value, dict):
        return {
            key: scanner.redact(item)
            if key in REDACTED_KEYS and isinstance(item, str)
            else _redact(item, scanner)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, scanner) for item in value]
    return value


def redacted_lines(lines: Iterable[bytes], scanner: PersonalDataScanner) -> Iterator[bytes]:
    """The lines of a valid file, each example with findings written anew (as UTF-8 JSON)."""
    for raw in lines:
        if not scanner.candidates(raw):
            yield raw
            continue
        record = json.loads(raw.removeprefix(b"\xef\xbb\xbf"))
        redacted = _redact(record, scanner)
        if redacted == record:
            yield raw
        else:
            yield json.dumps(redacted, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"


def redacted_filename(filename: str) -> str:
    stem = filename.removesuffix(".jsonl")
    return clean_filename(f"{stem}.redacted.jsonl")
