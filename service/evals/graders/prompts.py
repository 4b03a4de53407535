"""What a model grader sends and how its answer is read.

A `label_model` grader asks for one of its labels and a `score_model` grader for a number in its
range, both as a JSON object through structured outputs (`response_format` `json_schema`, named
`ftm_grade_label` / `ftm_grade_score`), after a system message that states the task. The caller's
own `input` messages follow, rendered with the item and the sample. An answer that is not that JSON,
or a label outside the list, or a score outside the range, is the item's error for that criterion.
"""

from __future__ import annotations

import json
from typing import Any

LABEL_SCHEMA_NAME = "ftm_grade_label"
SCORE_SCHEMA_NAME = "ftm_grade_score"


class GraderAnswerInvalid(ValueError):
    pass


def label_request(
    messages: list[dict[str, str]], labels: list[str]
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    system = {
        "role": "system",
        "content": "You are a grader. Read the conversation that follows and answer with the one label "
        f'that fits it best, from: {", ".join(labels)}. Reply with JSON {{"label": "<label>"}}.',
    }
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": labels}},
        "required": ["label"],
        "additionalProperties": False,
    }
    return [system, *messages], _format(LABEL_SCHEMA_NAME, schema)


def score_request(
    messages: list[dict[str, str]], low: float, high: float
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    system = {
        "role": "system",
        "content": "You are a grader. Read the conversation that follows and score it with a number "
        f'from {low:g} (worst) to {high:g} (best). Reply with JSON {{"score": <number>}}.',
    }
    schema = {
        "type": "object",
        "properties": {"score": {"type": "number", "minimum": low, "maximum": high}},
        "required": ["score"],
        "additionalProperties": False,
    }
    return [system, *messages], _format(SCORE_SCHEMA_NAME, schema)


def _format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def _object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise GraderAnswerInvalid(f"The grader model's answer is not JSON: {text[:200]!r}") from None
    if not isinstance(value, dict):
        raise GraderAnswerInvalid(f"The grader model's answer is not a JSON object: {text[:200]!r}")
    return value


def read_label(text: str, labels: list[str]) -> str:
    label = _object(text).get("label")
    if label not in labels:
        raise GraderAnswerInvalid(f"The grader model answered the label {label!r}, not one of {labels}.")
    return str(label)


def read_score(text: str, low: float, high: float) -> float:
    score = _object(text).get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not low <= score <= high:
        raise GraderAnswerInvalid(
            f"The grader model answered the score {score!r}, not a number in [{low:g}, {high:g}]."
        )
    return float(score)
