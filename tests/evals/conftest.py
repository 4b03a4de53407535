"""The evals tests: the local provider on a real socket (the jobs tests' fixtures), and helpers that
work a run through as a worker would."""

from __future__ import annotations

from typing import Any

from service.evals.runner import Outcome, process_run
from service.runtime import Runtime
from tests.jobs.conftest import emulator, emulator_url, sdk, settings

__all__ = ["emulator", "emulator_url", "sdk", "settings"]

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}
EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
ROUGE_L = {
    "type": "text_similarity",
    "name": "rouge",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "evaluation_metric": "rouge_l",
    "pass_threshold": 0.6,
}


def work(runtime: Runtime, run_id: str, *, rounds: int = 50) -> list[Outcome]:
    """Call the run task until the run is final (as the worker and the sweep would)."""
    outcomes = []
    for _ in range(rounds):
        outcome = process_run(runtime.sessions, runtime.providers, runtime.settings, run_id)
        outcomes.append(outcome)
        if outcome == Outcome.FINISHED:
            return outcomes
    raise AssertionError(f"the run did not finish: {outcomes}")


def completions_source(items: list[dict[str, Any]], model: str, **extra: Any) -> Any:
    return {
        "type": "completions",
        "model": model,
        "source": {"type": "file_content", "content": [{"item": item} for item in items]},
        "input_messages": {
            "type": "template",
            "template": [
                {"role": "system", "content": "You are a factual assistant about Jonny Whizbang."},
                {"role": "user", "content": "{{item.question}}"},
            ],
        },
        **extra,
    }
