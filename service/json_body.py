"""JSON request bodies as the API reads them: strict JSON (RFC 8259) numbers only.

Python's decoder also takes `NaN`, `Infinity` and `-Infinity`, and turns a number too large for a
float (`1e999`) into infinity. None of these is a number any field can hold, and passed on they
fail far from the request (a job whose `learning_rate_multiplier` is NaN can never be submitted),
so a body holding one is refused at once: a 400 naming the field, e.g.
`method.supervised.hyperparameters.learning_rate_multiplier` or `messages[0].temperature`.

`refuse_nul` refuses text holding a NUL character (`\\u0000`), which no SQL text column stores
(PostgreSQL refuses it outright): a 400 naming the field, before anything is looked up or stored.

The checks are nearly free on the way in: the decoder's hooks run only on those literals and on
numbers with a fraction or an exponent. The field's path is looked for only once a body has been
refused, by decoding it a second time; NUL is looked for only in a body whose bytes hold the
escape `\\u0000`, since JSON text cannot carry a raw NUL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from service.errors import InvalidRequest

NOT_JSON = (
    "We could not parse the JSON body of your request. The body must be a JSON object sent with "
    "'Content-Type: application/json'."
)


class _NonFinite(Exception):
    """Raised inside the decoder at the first non-finite number; caught in `loads`."""


def _refuse_constant(_: str) -> Any:
    raise _NonFinite


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NonFinite
    return value


# Made once: `json.loads` with hooks builds a new decoder (and its scanner) on every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def loads(raw: bytes | str) -> Any:
    """Decode `raw`. A non-finite number is an `InvalidRequest` naming where it is; malformed JSON
    raises what `json.loads` raises (`ValueError`, or `RecursionError` for absurd nesting)."""
    try:
        if isinstance(raw, str):
            if raw.startswith("\ufeff"):  # as json.loads refuses a str with a BOM
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
            return _DECODER.decode(raw)
        # bytes in any of JSON's encodings, decoded as json.loads decodes them (an object's `{`
        # then a byte that is not NUL is UTF-8 for json.detect_encoding: not worth asking it)
        encoding = "utf-8" if raw[:1] == b"{" and raw[1:2] != b"\x00" else json.detect_encoding(raw)
        return _DECODER.decode(raw.decode(encoding, "surrogatepass"))
    except _NonFinite:
        literal, path = _first_non_finite(raw)
    where = f"'{path}'" if path else "the request body"
    raise InvalidRequest(
        f"Invalid value for {where}: {literal} is not a JSON number; numbers must be finite.",
        param=path or None,
        code="invalid_value",
    )


class _Literal:
    """Stands for a non-finite number in the second decoding; keeps how it was written."""

    def __init__(self, text: str) -> None:
        self.text = text


def _mark_float(text: str) -> float | _Literal:
    value = float(text)
    return _Literal(text) if math.isinf(value) else value


def _first_non_finite(raw: bytes | str) -> tuple[str, str]:
    """The first non-finite literal in `raw` (which holds one) and its path, depth first."""
    document = json.loads(raw, parse_constant=_Literal, parse_float=_mark_float)
    for path, value in _walk(document):
        if isinstance(value, _Literal):
            return value.text, path
    return "a non-finite number", ""  # not reached: the body was refused for holding one


def refuse_nul(raw: bytes, document: Any) -> None:
    """400 naming the first field of the decoded `document` (from `raw`) whose key or text holds NUL."""
    if b"\\u0000" not in raw:
        return
    for path, value in _walk(document):
        if isinstance(value, str) and "\x00" in value:
            raise text_with_nul(path)
        if isinstance(value, dict) and any("\x00" in key for key in value):
            raise text_with_nul(path)


def text_with_nul(param: str) -> InvalidRequest:
    where = f"'{param}'" if param else "the request body"
    return InvalidRequest(
        f"Invalid value for {where}: text may not contain NUL characters (\\u0000).",
        param=param or None,
        code="invalid_value",
    )


def _walk(document: Any) -> Iterator[tuple[str, Any]]:
    """Every value of `document` with its path, depth first in document order."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            children = [(f"{path}.{key}" if path else str(key), item) for key, item in value.items()]
        elif isinstance(value, list):
            children = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        else:
            continue
        stack.extend(reversed(children))
