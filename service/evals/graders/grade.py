"""Grade one item by one criterion: a result `{"name", "type", "score", "passed", "sample"}`, where
`sample` is what a model grader answered (else null) and `usage` what it cost.

A criterion that cannot grade the item (a template refers to a missing field, a grader model's
answer is unreadable, a metric's data is missing) raises `GradingError`, which the run records as
the item's error; a provider that is unavailable raises `ProviderUnavailable` so the run backs off
and grades the item later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from service.errors import NotFound
from service.evals.graders import prompts
from service.evals.graders.checks import string_check
from service.evals.graders.formula import FormulaError, evaluate, parse_formula
from service.evals.graders.similarity import MetricUnavailable, similarity
from service.evals.sampling import ModelCaller
from service.evals.templates import MissingReference, render
from service.providers.errors import ProviderRejected
from service.providers.inference import Usage


class GradingError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class GradingSettings:
    embedding_model: str
    wordnet_dir: str | None


def usage_entry(model: str, usage: Usage) -> dict[str, Any]:
    return {
        "model_name": model,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": usage.cached_tokens,
        "invocation_count": 1,
    }


def grade(
    criterion: dict[str, Any], context: dict[str, Any], *, caller: ModelCaller, settings: GradingSettings
) -> dict[str, Any]:
    try:
        score, threshold, grader_sample, usage = _score(criterion, context, caller, settings)
    except MissingReference as error:
        raise GradingError("missing_reference", str(error)) from None
    except (prompts.GraderAnswerInvalid, FormulaError) as error:
        raise GradingError("grader_answer_invalid", str(error)) from None
    except MetricUnavailable as error:
        raise GradingError("metric_unavailable", str(error)) from None
    except ProviderRejected as error:
        raise GradingError("grader_model_error", error.message) from None
    except NotFound as error:
        raise GradingError("model_not_found", error.message) from None
    passed = bool(threshold) if isinstance(threshold, bool) else score >= threshold
    return {
        "name": criterion["name"],
        "type": criterion["type"],
        "score": score,
        "passed": passed,
        "sample": grader_sample,
        "usage": usage,
    }


def _score(
    criterion: dict[str, Any], context: dict[str, Any], caller: ModelCaller, settings: GradingSettings
) -> tuple[float, float | bool, dict[str, Any] | None, list[dict[str, Any]]]:
    """(score, pass threshold or the pass itself, the grader model's sample, usage entries)."""
    kind = criterion["type"]
    if kind == "string_check":
        score = string_check(
            criterion["operation"],
            render(criterion["input"], context),
            render(criterion["reference"], context),
        )
        return score, 1.0, None, []
    if kind == "text_similarity":
        text, reference = render(criterion["input"], context), render(criterion["reference"], context)
        metric = criterion["evaluation_metric"]
        if metric == "cosine":
            vectors, usage = _embed(caller, settings.embedding_model, [text, reference])
            return (
                _cosine(vectors[0], vectors[1]),
                criterion["pass_threshold"],
                None,
                [usage_entry(settings.embedding_model, usage)],
            )
        score = similarity(metric, text, reference, wordnet_dir=settings.wordnet_dir)
        return score, criterion["pass_threshold"], None, []
    if kind in ("label_model", "score_model"):
        messages = [{"role": m["role"], "content": render(m["content"], context)} for m in criterion["input"]]
        if kind == "label_model":
            sent, response_format = prompts.label_request(messages, criterion["labels"])
            answer = caller.chat(criterion["model"], sent, {}, response_format=response_format)
            label = prompts.read_label(answer.text, criterion["labels"])
            sample = {"output_text": answer.text, "label": label, "model": answer.model}
            passed = label in criterion["passing_labels"]
            return (1.0 if passed else 0.0), passed, sample, [usage_entry(answer.model, answer.usage)]
        low, high = criterion["range"]
        sent, response_format = prompts.score_request(messages, low, high)
        answer = caller.chat(
            criterion["model"], sent, criterion["sampling_params"], response_format=response_format
        )
        score = prompts.read_score(answer.text, low, high)
        sample = {"output_text": answer.text, "model": answer.model}
        return score, criterion["pass_threshold"], sample, [usage_entry(answer.model, answer.usage)]
    if kind == "multi":
        scores: dict[str, float] = {}
        spent: list[dict[str, Any]] = []
        for name, sub in criterion["graders"].items():
            result = grade(sub, context, caller=caller, settings=settings)
            scores[name] = result["score"]
            spent.extend(result["usage"])
        tree = parse_formula(criterion["calculate_output"], names=set(scores))
        return evaluate(tree, scores), criterion["pass_threshold"], {"scores": scores}, spent
    raise GradingError("unsupported_grader", f"Grader type '{kind}' is not supported.")


def _embed(caller: ModelCaller, model: str, texts: list[str]) -> tuple[list[list[float]], Usage]:
    """Both texts' embeddings; a clear error when the provider (or the routing) has none."""
    try:
        return caller.embed(model, texts)
    except (ProviderRejected, NotFound) as error:
        raise GradingError(
            "embeddings_unavailable",
            f"cosine similarity needs embeddings of '{model}' (FTM_EVALS_EMBEDDING_MODEL), which the "
            f"provider did not give: {error.message}",
        ) from None


def _cosine(left: list[float], right: list[float]) -> float:
    dot = sum(a * b for a, b in zip(left, right, strict=True))
    norm = math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right))
    if norm == 0:
        raise GradingError("grader_answer_invalid", "An embedding is all zeros; cosine is undefined.")
    return dot / norm
