"""One item of a run: sampled (its claim is this task's), then graded; each step written only
over the state this task left, so a task whose lease ran out cannot overwrite its successor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.errors import NotFound
from service.evals.graders.grade import GradingError, GradingSettings, grade
from service.evals.leases import renew
from service.evals.models import EvalRunItemRow, ItemStatus
from service.evals.sampling import ModelCaller
from service.evals.templates import MissingReference, lookup, render
from service.providers.errors import ProviderRejected, ProviderUnavailable

INTERRUPTED = {
    "code": "sample_interrupted",
    "message": "The worker sampling this item stopped before recording its answer; the item is not "
    "sampled again, so that no item is ever sampled twice.",
}


@dataclass
class RunContext:
    run_id: str
    token: str
    criteria: list[dict[str, Any]]
    data_source: dict[str, Any]
    caller: ModelCaller
    grading: GradingSettings
    settings: Settings


def _messages(data_source: dict[str, Any], item: dict[str, Any]) -> list[dict[str, str]]:
    spec = data_source["input_messages"]
    context = {"item": item}
    if spec["type"] == "item_reference":
        value = lookup(context, spec["item_reference"])
        if not isinstance(value, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value
        ):
            raise MissingReference(spec["item_reference"])
        return [{"role": m["role"], "content": m["content"]} for m in value]
    return [{"role": m["role"], "content": render(m["content"], context)} for m in spec["template"]]


def sample_item(sessions: sessionmaker[Session], context: RunContext, item_id: str) -> float | None:
    """Sample one claimed item and record it; the seconds to back off when the provider asked."""
    with sessions() as session:
        row = session.get(EvalRunItemRow, item_id)
        assert row is not None
        item = dict(row.item)
    params = dict(context.data_source.get("sampling_params") or {})
    model = context.data_source["model"]
    error: dict[str, str] | None = None
    sample: dict[str, Any] | None = None
    if not renew(
        sessions, context.settings, context.run_id, context.token, utcnow()
    ):  # cancelled, or taken over
        _set_item(
            sessions, item_id, ItemStatus.SAMPLING, context.token, status=ItemStatus.PENDING, claim_token=None
        )
        return None
    try:
        messages = _messages(context.data_source, item)
        answer = context.caller.chat(model, messages, params)
        sample = {
            "model": answer.model,
            "input": messages,
            "output": [{"role": "assistant", "content": answer.text}],
            "output_text": answer.text,
            "choices": [
                {
                    "message": {"role": "assistant", "content": answer.text},
                    "finish_reason": answer.finish_reason,
                }
            ],
            "finish_reason": answer.finish_reason,
            "usage": {
                "prompt_tokens": answer.usage.prompt_tokens,
                "completion_tokens": answer.usage.completion_tokens,
                "total_tokens": answer.usage.total_tokens,
                "cached_tokens": answer.usage.cached_tokens,
            },
            "seed": params.get("seed", 0),
            "temperature": params.get("temperature", 1.0),
            "top_p": params.get("top_p", 1.0),
            "max_completion_tokens": params.get("max_completion_tokens", 0),
        }
    except ProviderUnavailable as unavailable:
        _set_item(
            sessions, item_id, ItemStatus.SAMPLING, context.token, status=ItemStatus.PENDING, claim_token=None
        )
        return unavailable.retry_after_s if unavailable.retry_after_s is not None else -1.0
    except MissingReference as missing:
        error = {"code": "missing_reference", "message": str(missing)}
    except (ProviderRejected, NotFound) as rejected:
        error = {"code": rejected.code or "sample_failed", "message": rejected.message}
    if error is not None:
        _set_item(
            sessions,
            item_id,
            ItemStatus.SAMPLING,
            context.token,
            status=ItemStatus.DONE,
            error=error,
            passed=None,
        )
    else:
        _set_item(
            sessions, item_id, ItemStatus.SAMPLING, context.token, status=ItemStatus.SAMPLED, sample=sample
        )
    return None


def grade_item(sessions: sessionmaker[Session], context: RunContext, item_id: str) -> float | None:
    with sessions() as session:
        row = session.get(EvalRunItemRow, item_id)
        assert row is not None
        if row.status != ItemStatus.SAMPLED:
            return None
        grading_context = {"item": dict(row.item), "sample": dict(row.sample or {})}
    results: list[dict[str, Any]] = []
    error: dict[str, str] | None = None
    for criterion in context.criteria:
        try:
            results.append(grade(criterion, grading_context, caller=context.caller, settings=context.grading))
        except ProviderUnavailable as unavailable:
            return unavailable.retry_after_s if unavailable.retry_after_s is not None else -1.0
        except GradingError as failed:
            error = error or {"code": failed.code, "message": f"{criterion['name']}: {failed.message}"}
    passed = error is None and all(result["passed"] for result in results)
    _set_item(
        sessions,
        item_id,
        ItemStatus.SAMPLED,
        None,
        status=ItemStatus.DONE,
        results=results,
        passed=passed,
        error=error,
    )
    return None


def _set_item(
    sessions: sessionmaker[Session], item_id: str, expected: ItemStatus, token: str | None, **values: Any
) -> None:
    """Update an item still in the `expected` state (and, for a claim, still this task's): a task
    whose lease ran out never overwrites what the worker that took over decided."""
    with session_scope(sessions) as session:
        query = update(EvalRunItemRow).where(EvalRunItemRow.id == item_id, EvalRunItemRow.status == expected)
        if token is not None:
            query = query.where(EvalRunItemRow.claim_token == token)
        session.execute(query.values(**values))
