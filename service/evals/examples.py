"""A fine-tuning file's examples as eval items, and the criteria a job's evaluation uses by default.

Each chat example (`{"messages": [...]}`) becomes one item: the messages before its last assistant
turn are the prompt (`item.messages`, which the runs sample through `item_reference`) and that
turn's text is the reference answer (`item.reference`). An example that cannot be asked this way is
skipped and counted: no assistant turn, or a prompt with content that is not plain text (images,
tool calls) or a role the sampler cannot send (`tool`, `function`). A preference example
(`{"input": {"messages"}, "preferred_output": [...]}`) is asked its input, its preferred answer the
reference.

The default criteria grade the answer against the reference, each a different strictness:

- `exact`: `string_check` `eq` (the answer is the reference, character for character);
- `rouge_l`: `text_similarity` `rouge_l` (longest common subsequence F-measure), passing at 0.6;
- `fuzzy`: `text_similarity` `fuzzy_match` (rapidfuzz's normalised similarity), passing at 0.8.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SAMPLED_ROLES = ("system", "developer", "user", "assistant")

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"role": {"type": "string"}, "content": {"type": "string"}},
                "required": ["role", "content"],
            },
        },
        "reference": {"type": "string"},
    },
    "required": ["messages", "reference"],
}

DEFAULT_CRITERIA: list[dict[str, Any]] = [
    {
        "type": "string_check",
        "name": "exact",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}",
        "operation": "eq",
    },
    {
        "type": "text_similarity",
        "name": "rouge_l",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}",
        "evaluation_metric": "rouge_l",
        "pass_threshold": 0.6,
    },
    {
        "type": "text_similarity",
        "name": "fuzzy",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}",
        "evaluation_metric": "fuzzy_match",
        "pass_threshold": 0.8,
    },
]


@dataclass(frozen=True)
class Examples:
    items: list[dict[str, Any]]
    skipped: int  # examples that could not be asked (see the module docstring)
    truncated: bool  # more usable examples than a run takes; the first ones were kept


def _prompt(messages: Any) -> dict[str, Any] | None:
    if not isinstance(messages, list):
        return None
    last = max(
        (i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"),
        default=-1,
    )
    if last < 1:
        return None
    answer = messages[last].get("content")
    prompt = messages[:last]
    if not isinstance(answer, str) or not answer.strip():
        return None
    if not all(
        isinstance(m, dict) and m.get("role") in SAMPLED_ROLES and isinstance(m.get("content"), str)
        for m in prompt
    ):
        return None
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in prompt], "reference": answer}


def _item(row: Any) -> dict[str, Any] | None:
    if not isinstance(row, dict):
        return None
    if "messages" in row:
        return _prompt(row["messages"])
    given = row.get("input")
    preferred = row.get("preferred_output")
    if isinstance(given, dict) and isinstance(preferred, list) and preferred:
        return _prompt([*(given.get("messages") or []), preferred[0]])
    return None


def read_examples(lines: Iterable[bytes], *, max_items: int) -> Examples:
    """The items of a JSONL file of fine-tuning examples (lines that are not JSON are skipped)."""
    items: list[dict[str, Any]] = []
    skipped = 0
    truncated = False
    for raw in lines:
        if not raw.strip():
            continue
        try:
            item = _item(json.loads(raw))
        except ValueError:
            item = None
        if item is None:
            skipped += 1
        elif len(items) < max_items:
            items.append(item)
        else:
            truncated = True
    return Examples(items, skipped, truncated)
