"""A run's data source: which items it grades and, for `completions`, how each item is sampled.

Accepted (OpenAI's shapes):

- `{"type": "jsonl", "source": ...}`: the items carry their own `sample` (or none);
- `{"type": "completions", "source": ..., "model", "input_messages", "sampling_params"}`: each item
  is sampled from `model` with `input_messages`, either a `template` of messages rendered with
  `{{item.…}}`, or an `item_reference` naming a list of messages inside the item (`item.messages`).

`source` is `{"type": "file_content", "content": [{"item": {...}, "sample"?: {...}}]}` or
`{"type": "file_id", "id": "file-…"}` (a JSONL file of the tenant, one `{"item": …}` object or
bare item per line). The other kinds OpenAI has (`logs`, `stored_completions`, `responses`) need
stored traffic this service does not keep: a 400 naming the parameter.

Every item is checked against the eval's `item_schema` (JSON Schema, by `jsonschema`) when the run
is created; the first bad item is a 400 naming it (`data_source.source.content[3].item`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from service.errors import InvalidRequest
from service.evals.criteria import ROLES, check_sampling_params
from service.evals.templates import unknown_namespaces

UNSUPPORTED_KINDS = ("logs", "stored_completions", "responses")


@dataclass(frozen=True)
class Item:
    item: dict[str, Any]
    sample: dict[str, Any] | None
    line: int | None = None  # its line in a file


@dataclass(frozen=True)
class RunSource:
    """The checked data source: what to store on the run, and where its items come from."""

    stored: dict[str, Any]  # the data source as the run reports it (inline content kept)
    kind: str  # jsonl | completions
    file_id: str | None
    inline: list[Item] | None
    model: str | None


def _invalid(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def check_data_source(value: Any, *, max_items: int) -> RunSource:
    if not isinstance(value, dict):
        raise _invalid("'data_source' must be an object.", "data_source")
    kind = value.get("type")
    if kind in UNSUPPORTED_KINDS:
        raise _invalid(
            f"Data sources of type '{kind}' are not supported here (they read stored traffic, which this "
            "service does not keep); use 'jsonl' or 'completions'.",
            "data_source.type",
            "unsupported_data_source",
        )
    if kind not in ("jsonl", "completions"):
        raise _invalid("'data_source.type' must be 'jsonl' or 'completions'.", "data_source.type")
    source = value.get("source")
    param = "data_source.source"
    if not isinstance(source, dict):
        raise _invalid(f"'{param}' must be an object.", param)
    if source.get("type") in UNSUPPORTED_KINDS:
        raise _invalid(
            f"Sources of type '{source.get('type')}' are not supported here; use 'file_content' or 'file_id'.",
            f"{param}.type",
            "unsupported_data_source",
        )
    inline: list[Item] | None = None
    file_id: str | None = None
    if source.get("type") == "file_content":
        content = source.get("content")
        if not isinstance(content, list) or not content:
            raise _invalid(f"'{param}.content' must be a non-empty list.", f"{param}.content")
        if len(content) > max_items:
            raise _invalid(f"A run takes at most {max_items} items.", f"{param}.content")
        inline = [_item(row, f"{param}.content[{index}]") for index, row in enumerate(content)]
        stored_source: dict[str, Any] = {
            "type": "file_content",
            "content": [{"item": i.item, **({"sample": i.sample} if i.sample else {})} for i in inline],
        }
    elif source.get("type") == "file_id":
        if not isinstance(source.get("id"), str) or not source["id"]:
            raise _invalid(f"'{param}.id' must be a file id.", f"{param}.id")
        file_id = source["id"]
        stored_source = {"type": "file_id", "id": file_id}
    else:
        raise _invalid(f"'{param}.type' must be 'file_content' or 'file_id'.", f"{param}.type")
    stored: dict[str, Any] = {"type": kind, "source": stored_source}
    model = None
    if kind == "completions":
        model = value.get("model")
        if not isinstance(model, str) or not model:
            raise _invalid(
                "'data_source.model' is required for a completions data source.", "data_source.model"
            )
        stored |= {
            "model": model,
            "input_messages": _input_messages(value.get("input_messages")),
            "sampling_params": check_sampling_params(
                value.get("sampling_params") or {}, "data_source.sampling_params"
            ),
        }
    return RunSource(stored, kind, file_id, inline, model)


def _item(row: Any, param: str) -> Item:
    if not isinstance(row, dict) or not isinstance(row.get("item"), dict):
        raise _invalid(f"'{param}.item' must be an object.", f"{param}.item")
    sample = row.get("sample")
    if sample is not None and not isinstance(sample, dict):
        raise _invalid(f"'{param}.sample' must be an object.", f"{param}.sample")
    return Item(row["item"], sample)


def _input_messages(value: Any) -> dict[str, Any]:
    param = "data_source.input_messages"
    if not isinstance(value, dict):
        raise _invalid(f"'{param}' is required: a 'template' or an 'item_reference'.", param)
    if value.get("type") == "item_reference":
        reference = value.get("item_reference")
        if not isinstance(reference, str) or not reference.startswith("item."):
            raise _invalid(
                f"'{param}.item_reference' must name a field of the item, e.g. 'item.messages'.",
                f"{param}.item_reference",
            )
        return {"type": "item_reference", "item_reference": reference}
    if value.get("type") != "template":
        raise _invalid(f"'{param}.type' must be 'template' or 'item_reference'.", f"{param}.type")
    template = value.get("template")
    if not isinstance(template, list) or not template:
        raise _invalid(f"'{param}.template' must be a non-empty list of messages.", f"{param}.template")
    messages = []
    for index, message in enumerate(template):
        where = f"{param}.template[{index}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise _invalid(f"'{where}.role' must be one of {', '.join(ROLES)}.", f"{where}.role")
        content = message.get("content")
        if not isinstance(content, str):
            raise _invalid(f"'{where}.content' must be a string (a template).", f"{where}.content")
        for ref in unknown_namespaces(content):
            raise _invalid(f"'{where}.content' refers to '{{{{{ref}}}}}'; use 'item.…'.", f"{where}.content")
        messages.append({"role": message["role"], "content": content, "type": "message"})
    return {"type": "template", "template": messages}


def read_jsonl_items(lines: Iterable[bytes], *, max_items: int) -> list[Item]:
    """Items of a JSONL file: `{"item": {...}, "sample"?: {...}}` per line, or a bare item object."""
    items: list[Item] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        param = f"data_source.source.id (line {number})"
        try:
            row = json.loads(raw)
        except ValueError:
            raise _invalid(f"Line {number} of the file is not JSON.", "data_source.source.id") from None
        if isinstance(row, dict) and not isinstance(row.get("item"), dict):
            row = {"item": row}
        try:
            parsed = _item(row, param)
            items.append(Item(parsed.item, parsed.sample, number))
        except InvalidRequest as error:
            raise _invalid(f"Line {number} of the file: {error.message}", "data_source.source.id") from None
        if len(items) > max_items:
            raise _invalid(f"A run takes at most {max_items} items.", "data_source.source.id")
    if not items:
        raise _invalid("The file holds no items.", "data_source.source.id")
    return items


def check_items(items: list[Item], item_schema: dict[str, Any], *, param: str, inline: bool) -> None:
    """Each item against the eval's `item_schema`; the first failure is a 400 naming its item
    (`param[3].item` for inline content; for a file, `param` and the item's line in the message)."""
    validator = jsonschema.Draft202012Validator(item_schema)
    for index, item in enumerate(items):
        error = best_match(validator.iter_errors(item.item))
        if error is not None:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
            origin = f"Item {index}" if inline else f"Item {index} (line {item.line} of the file)"
            raise _invalid(
                f"{origin} does not match the eval's item_schema at 'item{where}': {error.message}",
                f"{param}[{index}].item" if inline else param,
                "item_schema_mismatch",
            )
