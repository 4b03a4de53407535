"""Reading one JSONL line into a record: orjson where it reads the line as the standard library
does, `json` (the reference, whose error messages the report quotes) everywhere else.

orjson reads a line in about two thirds of the time `json.loads` takes with its UTF-8 decode, and
where both accept a line they give the same strings, floats (both round correctly), key order and
last-duplicate-key values. They differ in what orjson rejects and `json` reads (NaN, Infinity,
numbers too large for a double, lone surrogates: orjson's error sends the line to `json`, which
reads it or names its fault as before) and in two things orjson reads differently: integers beyond
64 bits, which it turns into floats, and nesting between `json`'s recursion limit and orjson's
1,024 levels, which `json` refuses. Neither can occur in a *plain* record, a chat example of
messages holding only a string `role` and `content` (no numbers, three levels deep), the shape of
most chat lines; so orjson's record is kept only when it is plain, and any other is read again
with `json`. A file whose lines are not plain (tool calls, prompt-completion) would pay for both
readers, so after a line that is not plain the next one goes to `json` first, until a plain one.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_PLAIN_KEYS = frozenset({"role", "content"})


class LineError(Exception):
    """A line that is no JSON: `category` and `message` for the report."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.message = message


def is_plain(record: dict[str, Any]) -> bool:
    """Whether `record` is `{"messages": [...]}` with only string `role` and `content` keys in each
    message (extra keys, other types, tools and every other format are not plain)."""
    if len(record) != 1:
        return False
    messages = record.get("messages")
    if type(messages) is not list:
        return False
    for message in messages:
        if type(message) is not dict or not message.keys() <= _PLAIN_KEYS:
            return False
        for value in message.values():
            if type(value) is not str:
                return False
    return True


def read_json(raw: bytes) -> Any:
    """The value of one line with the standard library, or `LineError` with the report's wording."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LineError("invalid_utf8", f"not valid UTF-8 (byte {error.start + 1} of the line).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise LineError("invalid_json", f"not valid JSON ({error.msg} at column {error.colno}).") from None
    except (ValueError, RecursionError) as error:  # an integer of over 4,300 digits, deep nesting
        raise LineError("invalid_json", f"JSON that cannot be read ({error.__class__.__name__}).") from None


class LineReader:
    """Reads the lines of one file, each as `read_json` would (see the module's docstring).
    `plain` tells whether the record read last is plain (`is_plain`), for its exact fingerprint."""

    def __init__(self) -> None:
        self.orjson_first = True
        self.plain = False

    def read(self, raw: bytes) -> Any:
        if self.orjson_first:
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                record = read_json(raw)  # what orjson refuses, `json` reads or names the fault of
                self.plain = type(record) is dict and is_plain(record)
                return record
            self.plain = type(record) is dict and is_plain(record)
            if self.plain:
                return record
            self.orjson_first = False
            return read_json(raw)  # the same shape as orjson's: not plain either
        record = read_json(raw)
        self.plain = type(record) is dict and is_plain(record)
        if self.plain:
            self.orjson_first = True
        return record
