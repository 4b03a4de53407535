"""A run's figures, recomputed from its items: `result_counts`, `per_testing_criteria_results` and
`per_model_usage` (the sample's tokens per answering model, plus each model grader's)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.evals.models import EvalRunItemRow, EvalRunRow, ItemStatus
from service.evals.service import items_of

USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "invocation_count")


def summarize(session: Session, run: EvalRunRow, criteria: list[dict[str, Any]]) -> None:
    items = items_of(session, run.id)
    done = [item for item in items if item.status == ItemStatus.DONE]
    run.result_counts = {
        "total": run.item_count,
        "passed": sum(1 for item in done if item.error is None and item.passed),
        "failed": sum(1 for item in done if item.error is None and not item.passed),
        "errored": sum(1 for item in done if item.error is not None),
    }
    per_criterion = {c["name"]: {"testing_criteria": c["name"], "passed": 0, "failed": 0} for c in criteria}
    for item in done:
        for result in item.results:
            counts = per_criterion.get(result["name"])
            if counts is not None:
                counts["passed" if result["passed"] else "failed"] += 1
    run.per_testing_criteria_results = list(per_criterion.values())
    run.per_model_usage = model_usage(items)


def model_usage(items: list[EvalRunItemRow]) -> list[dict[str, Any]]:
    usage: dict[str, dict[str, Any]] = {}

    def add(entry: dict[str, Any]) -> None:
        totals = usage.setdefault(
            entry["model_name"], {"model_name": entry["model_name"]} | dict.fromkeys(USAGE_FIELDS, 0)
        )
        for key in USAGE_FIELDS:
            totals[key] += int(entry.get(key, 0))

    for item in items:
        sample = item.sample or {}
        if "usage" in sample and sample.get("model"):
            add({"model_name": sample["model"], **sample["usage"], "invocation_count": 1})
        for result in item.results:
            for entry in result.get("usage", []):
                add(entry)
    return sorted(usage.values(), key=lambda entry: str(entry["model_name"]))
