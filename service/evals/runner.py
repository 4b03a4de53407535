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
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.auth.models import TenantRow
from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.evals.graders.grade import GradingSettings
from service.evals.items import INTERRUPTED, RunContext, grade_item, sample_item
from service.evals.leases import Outcome, release, renew, sweep, take_lease
from service.evals.models import EvalRow, EvalRunItemRow, EvalRunRow, ItemStatus, RunStatus
from service.evals.sampling import ModelCaller
from service.evals.service import finish_run
from service.evals.summary import summarize
from service.ids import new_id
from service.providers.registry import ProviderRegistry
from service.usage.records import UsageBuffer
from service.usage.store import write_sums

log = logging.getLogger(__name__)


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
    taken = take_lease(sessions, settings, run_id, token, clock())
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
            ModelCaller(
                sessions,
                providers,
                tenant.id,
                tenant.name,
                usage=UsageBuffer(settings.inference_prices),
                usage_key=run_id,
            ),
            GradingSettings(settings.evals_embedding_model, settings.evals_wordnet_dir),
            settings,
        )
    deadline = time.monotonic() + settings.evals_run_slice_s
    try:
        while time.monotonic() < deadline:
            if not renew(sessions, settings, context.run_id, context.token, clock()):
                return Outcome.FINISHED
            more = _next_batch(sessions, settings, context)
            _write_usage(sessions, context.caller)
            if not more:
                return _complete(sessions, context)
    except _Backoff as backoff:
        release(sessions, context.run_id, context.token, clock() + timedelta(seconds=backoff.seconds))
        return Outcome.BACKING_OFF
    finally:
        _write_usage(sessions, context.caller)
    release(sessions, context.run_id, context.token, clock(), enqueue=True)
    return Outcome.CONTINUED


def _write_usage(sessions: sessionmaker[Session], models: ModelCaller) -> None:
    """Add the model calls counted since the last write to the tenant's usage."""
    if models.usage is not None and len(models.usage):
        with session_scope(sessions) as session:
            write_sums(session, models.usage.take())


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
            for result in pool.map(lambda item_id: sample_item(sessions, context, item_id), claimed):
                if result is not None:
                    backoffs.append(result)
            sampled = claimed
        for result in pool.map(lambda item_id: grade_item(sessions, context, item_id), sampled):
            if result is not None:
                backoffs.append(result)
    with session_scope(sessions) as session:
        run = session.get(EvalRunRow, context.run_id)
        assert run is not None
        summarize(session, run, context.criteria)
    if backoffs:
        raise _Backoff(max(wait if wait >= 0 else settings.evals_backoff_s for wait in backoffs))
    return True


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


__all__ = ["Outcome", "process_run", "sweep"]
