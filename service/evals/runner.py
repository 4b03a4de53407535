"""Working through a run in a Celery worker: bounded batches, exactly-once sampling, backoff.

One task holds a run's lease (`lease_token`, `lease_until`) while it works on it for at most
`FTM_EVALS_RUN_SLICE_S`, then queues the next task (through the outbox) and lets go; a worker that
dies loses the lease when it expires and the sweep queues the run again. A tenant has at most
`FTM_EVALS_TENANT_RUNS` runs leased at once, and each run at most `FTM_EVALS_CONCURRENCY` model
calls in flight, so one tenant's large run cannot take every worker.

Each batch of `FTM_EVALS_BATCH_SIZE` pending items is claimed (committed as `sampling` under this
task's token) before any of them is sampled, and each sample is committed before the item is graded.
An item found `sampling` under another token was being sampled when its worker died: its model may
or may not have answered, so it is not sampled again but recorded as errored (`sample_interrupted`)
— a run never samples an item twice. A provider 429 or 5xx puts the item back to `pending` (the
provider did not answer it) and the run waits for the provider's Retry-After (else
`FTM_EVALS_BACKOFF_S`) before it goes on. A cancel is seen before each item's model call, where the lease is renewed too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.auth.models import TenantRow
from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.errors import NotFound
from service.evals.graders.grade import GradingError, GradingSettings, grade
from service.evals.models import EvalRow, EvalRunItemRow, EvalRunRow, ItemStatus, RunStatus
from service.evals.sampling import ModelCaller
from service.evals.service import finish_run
from service.evals.summary import summarize
from service.evals.templates import MissingReference, lookup, render
from service.ids import new_id
from service.outbox import service as outbox
from service.providers.errors import ProviderRejected, ProviderUnavailable
from service.providers.registry import ProviderRegistry
from service.tasks import TaskName

log = logging.getLogger(__name__)
INTERRUPTED = {
    "code": "sample_interrupted",
    "message": "The worker sampling this item stopped before recording its answer; the item is not "
    "sampled again, so that no item is ever sampled twice.",
}


class Outcome(StrEnum):
    FINISHED = "finished"  # the run reached a final status (now or before)
    LEASED = "leased"  # another worker holds it
    WAITING = "waiting"  # the tenant's other runs hold its share of workers
    BACKING_OFF = "backing_off"  # the provider asked to wait
    CONTINUED = "continued"  # the slice ran out; the next task is queued


@dataclass
class RunContext:
    run_id: str
    token: str
    criteria: list[dict[str, Any]]
    data_source: dict[str, Any]
    caller: ModelCaller
    grading: GradingSettings
    settings: Settings


class _Backoff(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


def process_run(
    sessions: sessionmaker[Session],
    providers: ProviderRegistry,
    settings: Settings,
    run_id: str,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> Outcome:
    token = new_id("lease_", 16)
    taken = _take_lease(sessions, settings, run_id, token, clock())
    if taken is not None:
        return taken
    with session_scope(sessions) as session:
        run = session.get(EvalRunRow, run_id)
        assert run is not None
        eval_row = session.get(EvalRow, run.eval_id)
        tenant = session.get(TenantRow, run.tenant_id)
        assert eval_row is not None
        assert tenant is not None
        interrupted = session.execute(
            update(EvalRunItemRow)
            .where(EvalRunItemRow.run_id == run_id, EvalRunItemRow.status == ItemStatus.SAMPLING)
            .values(status=ItemStatus.DONE, error=INTERRUPTED, passed=None)
        )
        lost = int(getattr(interrupted, "rowcount", 0) or 0)
        if lost:
            log.warning("evals.run %s: %s items interrupted mid-sample", run_id, lost)
        context = RunContext(
            run_id,
            token,
            eval_row.testing_criteria,
            run.data_source,
            ModelCaller(sessions, providers, tenant.id, tenant.name),
            GradingSettings(settings.evals_embedding_model, settings.evals_wordnet_dir),
            settings,
        )
    deadline = time.monotonic() + settings.evals_run_slice_s
    try:
        while time.monotonic() < deadline:
            if not _renew(sessions, settings, context, clock()):
                return Outcome.FINISHED
            if not _next_batch(sessions, settings, context):
                return _complete(sessions, context)
    except _Backoff as backoff:
        _release(sessions, context, clock() + timedelta(seconds=backoff.seconds))
        return Outcome.BACKING_OFF
    _release(sessions, context, clock(), enqueue=True)
    return Outcome.CONTINUED


def _take_lease(
    sessions: sessionmaker[Session], settings: Settings, run_id: str, token: str, now: datetime
) -> Outcome | None:
    """None when this task now holds the run; else why it does not."""
    with session_scope(sessions) as session:
        run = session.get(EvalRunRow, run_id)
        if run is None or run.status not in (RunStatus.QUEUED, RunStatus.IN_PROGRESS):
            return Outcome.FINISHED
        busy = session.scalar(
            select(func.count())
            .select_from(EvalRunRow)
            .where(
                EvalRunRow.tenant_id == run.tenant_id,
                EvalRunRow.id != run_id,
                EvalRunRow.status == RunStatus.IN_PROGRESS,
                EvalRunRow.lease_until > now,
            )
        )
        if (busy or 0) >= settings.evals_tenant_runs:
            run.next_attempt_at = now + timedelta(seconds=settings.evals_backoff_s)
            return Outcome.WAITING
        taken = session.execute(
            update(EvalRunRow)
            .where(
                EvalRunRow.id == run_id,
                EvalRunRow.status.in_((RunStatus.QUEUED, RunStatus.IN_PROGRESS)),
                or_(EvalRunRow.lease_until.is_(None), EvalRunRow.lease_until < now),
            )
            .values(
                lease_token=token,
                lease_until=now + timedelta(seconds=settings.evals_lease_s),
                next_attempt_at=now + timedelta(seconds=settings.evals_lease_s),
                status=RunStatus.IN_PROGRESS,
                updated_at=now,
            )
        )
        return None if getattr(taken, "rowcount", 0) == 1 else Outcome.LEASED


def _renew(sessions: sessionmaker[Session], settings: Settings, context: RunContext, now: datetime) -> bool:
    """Extend the lease; False when the run was cancelled (or taken over) meanwhile."""
    with session_scope(sessions) as session:
        renewed = session.execute(
            update(EvalRunRow)
            .where(
                EvalRunRow.id == context.run_id,
                EvalRunRow.lease_token == context.token,
                EvalRunRow.status == RunStatus.IN_PROGRESS,
            )
            .values(
                lease_until=now + timedelta(seconds=settings.evals_lease_s),
                next_attempt_at=now + timedelta(seconds=settings.evals_lease_s),
            )
        )
        return getattr(renewed, "rowcount", 0) == 1


def _next_batch(sessions: sessionmaker[Session], settings: Settings, context: RunContext) -> bool:
    """Sample and grade one batch; False when nothing is left to do."""
    with session_scope(sessions) as session:
        sampled = list(
            session.scalars(
                select(EvalRunItemRow.id)
                .where(EvalRunItemRow.run_id == context.run_id, EvalRunItemRow.status == ItemStatus.SAMPLED)
                .order_by(EvalRunItemRow.datasource_item_id)
                .limit(settings.evals_batch_size)
            )
        )
        claimed: list[str] = []
        if not sampled:
            claimed = list(
                session.scalars(
                    select(EvalRunItemRow.id)
                    .where(
                        EvalRunItemRow.run_id == context.run_id, EvalRunItemRow.status == ItemStatus.PENDING
                    )
                    .order_by(EvalRunItemRow.datasource_item_id)
                    .limit(settings.evals_batch_size)
                )
            )
            if claimed:
                session.execute(
                    update(EvalRunItemRow)
                    .where(EvalRunItemRow.id.in_(claimed), EvalRunItemRow.status == ItemStatus.PENDING)
                    .values(status=ItemStatus.SAMPLING, claim_token=context.token)
                )
    if not sampled and not claimed:
        return False
    backoffs: list[float] = []
    with ThreadPoolExecutor(max_workers=settings.evals_concurrency) as pool:
        if claimed:
            for result in pool.map(lambda item_id: _sample_item(sessions, context, item_id), claimed):
                if result is not None:
                    backoffs.append(result)
            sampled = claimed
        for result in pool.map(lambda item_id: _grade_item(sessions, context, item_id), sampled):
            if result is not None:
                backoffs.append(result)
    with session_scope(sessions) as session:
        run = session.get(EvalRunRow, context.run_id)
        assert run is not None
        summarize(session, run, context.criteria)
    if backoffs:
        raise _Backoff(max(wait if wait >= 0 else settings.evals_backoff_s for wait in backoffs))
    return True


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


def _sample_item(sessions: sessionmaker[Session], context: RunContext, item_id: str) -> float | None:
    """Sample one claimed item and record it; the seconds to back off when the provider asked."""
    with sessions() as session:
        row = session.get(EvalRunItemRow, item_id)
        assert row is not None
        item = dict(row.item)
    params = dict(context.data_source.get("sampling_params") or {})
    model = context.data_source["model"]
    error: dict[str, str] | None = None
    sample: dict[str, Any] | None = None
    if not _renew(sessions, context.settings, context, utcnow()):  # cancelled, or taken over
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


def _grade_item(sessions: sessionmaker[Session], context: RunContext, item_id: str) -> float | None:
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


def _complete(sessions: sessionmaker[Session], context: RunContext) -> Outcome:
    with session_scope(sessions) as session:
        run = session.get(EvalRunRow, context.run_id)
        assert run is not None
        if run.lease_token != context.token or run.status != RunStatus.IN_PROGRESS:
            return Outcome.FINISHED
        summarize(session, run, context.criteria)
        counts = run.result_counts
        if counts["total"] and counts["errored"] == counts["total"]:
            finish_run(
                session,
                run,
                RunStatus.FAILED,
                error={
                    "code": "all_items_errored",
                    "message": "Every item of the run errored; see its output items.",
                },
            )
        else:
            finish_run(session, run, RunStatus.COMPLETED)
    return Outcome.FINISHED


def _release(
    sessions: sessionmaker[Session], context: RunContext, next_attempt_at: datetime, *, enqueue: bool = False
) -> None:
    with session_scope(sessions) as session:
        run = session.get(EvalRunRow, context.run_id)
        if run is None or run.lease_token != context.token:
            return
        run.lease_token = None
        run.lease_until = None
        run.next_attempt_at = next_attempt_at
        if enqueue and run.status == RunStatus.IN_PROGRESS:
            outbox.enqueue(session, TaskName.EVALS_RUN, run_id=run.id)


def sweep(session: Session, settings: Settings, *, now: datetime | None = None) -> int:
    """Queue the runs that are due: not final, not leased, and past their `next_attempt_at`."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(EvalRunRow)
            .where(
                EvalRunRow.status.in_((RunStatus.QUEUED, RunStatus.IN_PROGRESS)),
                EvalRunRow.next_attempt_at <= now,
                or_(EvalRunRow.lease_until.is_(None), EvalRunRow.lease_until < now),
            )
            .limit(200)
        )
    )
    for run in due:
        run.next_attempt_at = now + timedelta(seconds=settings.evals_lease_s)
        outbox.enqueue(session, TaskName.EVALS_RUN, run_id=run.id)
    return len(due)
