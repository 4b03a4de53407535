"""Deterministic answers to grader prompts, so that model graders run offline.

A grader request is a chat completion whose `response_format` is a JSON schema named
`ftm_grade_label` (answer `{"label": <one of the schema's enum>}`) or `ftm_grade_score` (answer
`{"score": <number between the schema's minimum and maximum>}`), as ftm's `label_model` and
`score_model` graders send them. The emulator judges by a fixed rule: in the conversation's
non-system messages it reads the first line starting with `Reference:` and the first starting with
`Answer:`, and measures how much they agree (F1 over their normalised word terms, 0 when either
line is missing). The label is the enum's first when the agreement is at least 0.5, else its
last; the score is the agreement scaled to the range, rounded to 3 decimals.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from emulator.training.retrieval import terms

LABEL = "ftm_grade_label"
SCORE = "ftm_grade_score"
_LINE = re.compile(r"^\s*(reference|answer)\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)


def grader_kind(response_format: Any) -> str | None:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    name = (response_format.get("json_schema") or {}).get("name")
    return name if name in (LABEL, SCORE) else None


def agreement(texts: list[str]) -> float:
    found: dict[str, str] = {}
    for text in texts:
        for match in _LINE.finditer(text):
            found.setdefault(match.group(1).lower(), match.group(2))
    if "reference" not in found or "answer" not in found:
        return 0.0
    reference, answer = Counter(terms(found["reference"])), Counter(terms(found["answer"]))
    common = sum((reference & answer).values())
    if not common:
        return 0.0
    precision, recall = common / sum(answer.values()), common / sum(reference.values())
    return 2 * precision * recall / (precision + recall)


def grade(kind: str, response_format: dict[str, Any], texts: list[str]) -> str:
    """The grader's JSON answer."""
    schema = response_format["json_schema"].get("schema") or {}
    value = agreement(texts)
    if kind == LABEL:
        labels = schema.get("properties", {}).get("label", {}).get("enum") or ["pass", "fail"]
        return json.dumps({"label": labels[0] if value >= 0.5 else labels[-1]})
    bounds = schema.get("properties", {}).get("score", {})
    low, high = float(bounds.get("minimum", 0.0)), float(bounds.get("maximum", 1.0))
    return json.dumps({"score": round(low + value * (high - low), 3)})
