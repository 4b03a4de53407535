"""The proxy's view of an inference request body: read it within the size limit, check that it is a
JSON object naming a `model`, and produce the bytes to send upstream.

The body is otherwise opaque: every other field goes to the provider as the caller wrote it, so a
provider feature the proxy has never heard of still works. Only numbers JSON cannot hold (`NaN`,
`Infinity`) are refused anywhere in it, naming the field (`service.json_body`).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from service import json_body
from service.errors import InvalidRequest, PayloadTooLarge
from service.json_body import NOT_JSON

# A `"model":` key. Inside a JSON string every quote is escaped, so this matches keys only.
_MODEL_KEY = re.compile(rb'"model"\s*:\s*')


@dataclass(frozen=True)
class InferencePayload:
    """A checked request body: the raw bytes, the parsed object, its `model` and whether it streams."""

    raw: bytes
    body: dict[str, Any]
    model: str
    stream: bool

    def for_upstream(self, upstream_model: str) -> bytes:
        """The body to forward: unchanged, except `model` is the provider's name for it.

        The new name is spliced into the caller's bytes where the body has one `"model"` key
        written plainly (no `\\u` escape anywhere, so no key is hidden behind one): the rest goes
        on exactly as written and nothing is serialised again. Any other body is re-serialised."""
        if upstream_model == self.model:
            return self.raw  # nothing to rewrite
        raw = self.raw
        if b"\\u" not in raw:
            # `"model"` written once is the one key: found without scanning the body with a regex
            found = raw.count(b'"model"')
            key = _MODEL_KEY.match(raw, raw.find(b'"model"')) if found == 1 else None
            keys = [key] if key is not None else list(_MODEL_KEY.finditer(raw)) if found > 1 else []
            if len(keys) == 1:
                written = _json_string(self.model)
                start = keys[0].end()
                if raw.startswith(written, start):
                    return raw[:start] + _json_string(upstream_model) + raw[start + len(written) :]
        return json.dumps({**self.body, "model": upstream_model}, ensure_ascii=False).encode()


@lru_cache(maxsize=4096)  # model names: a few per tenant, written on every request
def _json_string(text: str) -> bytes:
    """`text` as a JSON string, as `json.dumps(text, ensure_ascii=False)` writes it."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return b'"' + text.encode() + b'"'
    return json.dumps(text, ensure_ascii=False).encode()


def whole_body(body: bytes, *, limit: int) -> bytes:
    """A body the server had whole, refused (413) over `limit` bytes."""
    if len(body) > limit:
        raise _too_large(limit)
    return body


async def read_body(stream: AsyncIterator[bytes], *, declared: str | None, limit: int) -> bytes:
    """The request body from its `stream`, refusing (413) anything over `limit` bytes, by its
    declared Content-Length or while it streams in, without reading it all first."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_payload(raw: bytes) -> InferencePayload:
    """Check `raw` is a JSON object with a non-empty string `model` and finite numbers (400 naming
    the problem if not)."""
    try:
        body = json_body.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise InvalidRequest(NOT_JSON, code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"The request body must be a JSON object, not {_json_type(body)}.", code="invalid_type"
        )
    model = body.get("model")
    if model is None:
        raise InvalidRequest(
            "You must provide a model parameter.", param="model", code="missing_required_parameter"
        )
    if isinstance(model, str) and "\x00" in model:  # it is looked up in the database
        raise json_body.text_with_nul("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            f"Invalid type for 'model': expected a non-empty string, but got {_json_type(model)}.",
            param="model",
            code="invalid_type",
        )
    return InferencePayload(raw=raw, body=body, model=model, stream=body.get("stream") is True)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
