"""Testing criteria (graders) as an eval stores them: checked once, at creation, into plain dicts.

Each criterion is checked field by field, and a problem is a 400 naming the field
(`testing_criteria[1].evaluation_metric`). What is accepted:

- `string_check`: `input`, `reference` (templates), `operation` `eq|ne|like|ilike`;
- `text_similarity`: `input`, `reference`, `evaluation_metric` (`fuzzy_match`, `bleu`, `gleu`,
  `meteor`, `rouge_1`..`rouge_5`, `rouge_l`, `cosine`), `pass_threshold`;
- `label_model`: `model`, `input` (messages), `labels`, `passing_labels` (a subset of `labels`);
- `score_model`: `model`, `input`, optional `range` (default [0, 1]), `sampling_params`,
  `pass_threshold` (default: the middle of `range`);
- `multi` (a native extension; OpenAI has it for reinforcement fine-tuning only): `graders`, a map
  of names to the graders above, `calculate_output`, a formula over those names (see
  `service.evals.graders.formula`), and `pass_threshold`.

`python` graders are refused: running callers' code needs an isolated runner this service does not
have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from service.errors import InvalidRequest
from service.evals.graders.formula import FormulaError, parse_formula
from service.evals.graders.similarity import METRICS
from service.evals.templates import unknown_namespaces

OPERATIONS = ("eq", "ne", "like", "ilike")
ROLES = ("system", "developer", "user", "assistant")
GRADER_TYPES = ("string_check", "text_similarity", "label_model", "score_model", "multi")
MAX_CRITERIA = 20


def _invalid(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _text(spec: Mapping[str, Any], key: str, param: str, *, template: bool = True) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise _invalid(f"'{param}.{key}' must be a non-empty string.", f"{param}.{key}")
    if template:
        for ref in unknown_namespaces(value):
            raise _invalid(
                f"'{param}.{key}' refers to '{{{{{ref}}}}}'; templates may refer to 'item.…' and 'sample.…' only.",
                f"{param}.{key}",
            )
    return value


def _number(spec: Mapping[str, Any], key: str, param: str, default: float | None = None) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"'{param}.{key}' must be a number.", f"{param}.{key}")
    return float(value)


def _messages(spec: Mapping[str, Any], param: str) -> list[dict[str, Any]]:
    value = spec.get("input")
    if not isinstance(value, list) or not value:
        raise _invalid(f"'{param}.input' must be a non-empty list of messages.", f"{param}.input")
    messages = []
    for index, message in enumerate(value):
        where = f"{param}.input[{index}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise _invalid(f"'{where}.role' must be one of {', '.join(ROLES)}.", f"{where}.role")
        messages.append(
            {"role": message["role"], "content": _text(message, "content", where), "type": "message"}
        )
    return messages


def _model(spec: Mapping[str, Any], param: str) -> str:
    return _text(spec, "model", param, template=False)


def check_grader(spec: Any, param: str, *, nested: bool = False) -> dict[str, Any]:
    """One grader, checked and normalised; 400 naming the field at fault."""
    if not isinstance(spec, dict):
        raise _invalid(f"'{param}' must be an object.", param)
    kind = spec.get("type")
    if kind == "python":
        raise _invalid(
            "Python graders are not supported: this service has no isolated runner for callers' code. "
            "Use string_check, text_similarity, label_model, score_model or multi.",
            f"{param}.type",
            "unsupported_grader",
        )
    if kind not in GRADER_TYPES or (nested and kind == "multi"):
        allowed = [t for t in GRADER_TYPES if not (nested and t == "multi")]
        raise _invalid(f"'{param}.type' must be one of {', '.join(allowed)}.", f"{param}.type")
    name = _text(spec, "name", param, template=False)
    grader: dict[str, Any] = {"type": kind, "name": name}
    if kind == "string_check":
        if spec.get("operation") not in OPERATIONS:
            raise _invalid(
                f"'{param}.operation' must be one of {', '.join(OPERATIONS)}.", f"{param}.operation"
            )
        grader |= {
            "input": _text(spec, "input", param),
            "reference": _text(spec, "reference", param),
            "operation": spec["operation"],
        }
    elif kind == "text_similarity":
        if spec.get("evaluation_metric") not in METRICS:
            raise _invalid(
                f"'{param}.evaluation_metric' must be one of {', '.join(METRICS)}.",
                f"{param}.evaluation_metric",
            )
        grader |= {
            "input": _text(spec, "input", param),
            "reference": _text(spec, "reference", param),
            "evaluation_metric": spec["evaluation_metric"],
            "pass_threshold": _number(spec, "pass_threshold", param),
        }
    elif kind == "label_model":
        labels = spec.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(v, str) and v for v in labels):
            raise _invalid(f"'{param}.labels' must be a non-empty list of strings.", f"{param}.labels")
        passing = spec.get("passing_labels")
        if not isinstance(passing, list) or not passing or any(v not in labels for v in passing):
            raise _invalid(
                f"'{param}.passing_labels' must be a non-empty list of labels from '{param}.labels'.",
                f"{param}.passing_labels",
            )
        grader |= {
            "model": _model(spec, param),
            "input": _messages(spec, param),
            "labels": list(dict.fromkeys(labels)),
            "passing_labels": list(dict.fromkeys(passing)),
        }
    elif kind == "score_model":
        grader |= _score_model(spec, param)
    else:
        grader |= _multi(spec, param)
    return grader


def _score_model(spec: Mapping[str, Any], param: str) -> dict[str, Any]:
    bounds = spec.get("range", [0.0, 1.0])
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bounds)
        or not bounds[0] < bounds[1]
    ):
        raise _invalid(f"'{param}.range' must be two numbers [low, high] with low < high.", f"{param}.range")
    low, high = float(bounds[0]), float(bounds[1])
    threshold = _number(spec, "pass_threshold", param, (low + high) / 2)
    params = spec.get("sampling_params") or {}
    if not isinstance(params, dict):
        raise _invalid(f"'{param}.sampling_params' must be an object.", f"{param}.sampling_params")
    if "max_completions_tokens" in params:  # the name OpenAI's score_model grader gives it
        params = {k: v for k, v in params.items() if k != "max_completions_tokens"} | {
            "max_completion_tokens": params["max_completions_tokens"]
        }
    return {
        "model": _model(spec, param),
        "input": _messages(spec, param),
        "range": [low, high],
        "pass_threshold": threshold,
        "sampling_params": check_sampling_params(params, f"{param}.sampling_params"),
    }


def _multi(spec: Mapping[str, Any], param: str) -> dict[str, Any]:
    graders = spec.get("graders")
    if not isinstance(graders, dict) or not graders:
        raise _invalid(f"'{param}.graders' must be an object of named graders.", f"{param}.graders")
    checked = {
        key: check_grader(value, f"{param}.graders.{key}", nested=True) for key, value in graders.items()
    }
    formula = _text(spec, "calculate_output", param, template=False)
    try:
        parse_formula(formula, names=set(checked))
    except FormulaError as error:
        raise _invalid(f"'{param}.calculate_output': {error}", f"{param}.calculate_output") from None
    return {
        "graders": checked,
        "calculate_output": formula,
        "pass_threshold": _number(spec, "pass_threshold", param),
    }


SAMPLING_LIMITS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}


def check_sampling_params(params: Mapping[str, Any], param: str) -> dict[str, Any]:
    """`temperature`, `top_p`, `seed`, `max_completion_tokens`; anything else is a 400."""
    checked: dict[str, Any] = {}
    for key, value in params.items():
        where = f"{param}.{key}"
        if value is None:
            continue
        if key in SAMPLING_LIMITS:
            low, high = SAMPLING_LIMITS[key]
            number = _number(params, key, param)
            if not low <= number <= high:
                raise _invalid(f"'{where}' must be between {low:g} and {high:g}.", where)
            checked[key] = number
        elif key in ("seed", "max_completion_tokens"):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "seed" else 1):
                raise _invalid(
                    f"'{where}' must be an integer of at least {0 if key == 'seed' else 1}.", where
                )
            checked[key] = value
        else:
            raise _invalid(
                f"'{where}' is not supported; sampling_params takes temperature, top_p, seed and "
                "max_completion_tokens.",
                where,
            )
    return checked


def check_testing_criteria(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise _invalid("'testing_criteria' must be a non-empty list of graders.", "testing_criteria")
    if len(value) > MAX_CRITERIA:
        raise _invalid(f"An eval takes at most {MAX_CRITERIA} testing criteria.", "testing_criteria")
    criteria = [check_grader(spec, f"testing_criteria[{index}]") for index, spec in enumerate(value)]
    names = [criterion["name"] for criterion in criteria]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise _invalid(
                f"Two testing criteria are named '{name}'; names must be unique.",
                f"testing_criteria[{index}].name",
            )
    return criteria


def uses_model(criteria: list[dict[str, Any]]) -> set[str]:
    """The models the criteria call (label_model, score_model, also inside multi)."""
    models: set[str] = set()
    for criterion in criteria:
        if "model" in criterion:
            models.add(criterion["model"])
        for sub in criterion.get("graders", {}).values():
            if "model" in sub:
                models.add(sub["model"])
    return models
