"""What becomes of a job's evaluation and the promotions waiting on it once its runs are over
(step 3 of `service.evals.job_evaluations`): the comparison recorded and announced, or the reason
it could not be made; each waiting deployment's decision; and the sweep that queues again what a
lost task left.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.cache_changes import Change
from service.clock import utcnow
from service.deployments import gate
from service.deployments.models import PromotionDecisionRow
from service.deployments.promotion import decide
from service.evals.comparison import compare_runs
from service.evals.models import (
    FINAL_RUN_STATUSES,
    EvalRow,
    EvalRunRow,
    JobEvaluationRow,
    JobEvaluationStatus,
    RunStatus,
)
from service.outbox import service as outbox
from service.tasks import TaskName
from service.webhooks.events import EventType
from service.webhooks.service import emit_event

log = logging.getLogger(__name__)

SEED = 0  # the comparison's bootstrap seed: one evaluation, one answer
RESAMPLES = 10_000
ALPHA = 0.05
STALE_AFTER = timedelta(minutes=5)


def fail(session: Session, row: JobEvaluationRow, code: str, message: str) -> None:
    """The evaluation could not be made: say why, once, and refuse the promotions waiting on it."""
    failed = session.execute(
        update(JobEvaluationRow)
        .where(
            JobEvaluationRow.id == row.id,
            JobEvaluationRow.status.in_((JobEvaluationStatus.QUEUED, JobEvaluationStatus.RUNNING)),
        )
        .values(
            status=JobEvaluationStatus.FAILED,
            error={"code": code, "message": message},
            finished_at=utcnow(),
        )
        .execution_options(synchronize_session="fetch")
    )
    if getattr(failed, "rowcount", 0) != 1:
        return
    log.warning("job %s: evaluation failed: %s", row.job_id, message)
    emit_event(
        session, tenant_id=row.tenant_id, type=EventType.FINE_TUNING_JOB_EVALUATION_FAILED, data_id=row.job_id
    )
    for decision in gate.pending_for_job(session, tenant_id=row.tenant_id, job_id=row.job_id):
        gate.refuse(session, decision, "evaluation_failed", f"The job's evaluation failed: {message}")


def _final(session: Session, run_id: str | None) -> tuple[bool, EvalRunRow | None, str | None]:
    """(whether the run is over, the run if it completed, why it did not complete)."""
    run = session.get(EvalRunRow, run_id) if run_id is not None else None
    if run is None:
        return True, None, f"the run {run_id} was deleted"
    if run.status not in FINAL_RUN_STATUSES:
        return False, None, None
    if run.status != RunStatus.COMPLETED:
        detail = f": {run.error['message']}" if run.error else ""
        return True, None, f"the run {run.id} ({run.model}) {run.status}{detail}"
    return True, run, None


def _compare(
    session: Session, eval_id: str | None, candidate: EvalRunRow, baseline: EvalRunRow, alpha: float
) -> dict[str, Any]:
    eval_row = session.get(EvalRow, eval_id)
    assert eval_row is not None
    comparison = compare_runs(
        session, eval_row, candidate, baseline, seed=SEED, resamples=RESAMPLES, alpha=alpha
    )
    return comparison.model_dump(mode="json")


def conclude(session: Session, job_id: str) -> list[Change]:
    """Conclude what is ready of the job's evaluation and of the promotions waiting on it; the
    routes a promotion changed, for the caller to announce once this transaction commits."""
    row = session.scalar(select(JobEvaluationRow).where(JobEvaluationRow.job_id == job_id))
    if row is not None and row.status == JobEvaluationStatus.RUNNING:
        _conclude_evaluation(session, row)
    if row is None:
        return []
    changes = []
    for decision in gate.pending_for_job(session, tenant_id=row.tenant_id, job_id=job_id):
        if decision.candidate_run_id is None:
            continue  # `start` has not named its runs yet (it refuses the decision if it cannot)
        name = _conclude_decision(session, decision)
        if name is not None:
            changes.append(Change(tenant_id=decision.tenant_id, model=name))
    return changes


def _conclude_evaluation(session: Session, row: JobEvaluationRow) -> None:
    base_over, base, base_problem = _final(session, row.base_run_id)
    tuned_over, tuned, tuned_problem = _final(session, row.fine_tuned_run_id)
    if not (base_over and tuned_over):
        return
    if base is None or tuned is None:
        fail(session, row, "run_not_completed", f"{base_problem or tuned_problem}.")
        return
    comparison = _compare(session, row.eval_id, tuned, base, ALPHA)
    done = session.execute(
        update(JobEvaluationRow)
        .where(JobEvaluationRow.id == row.id, JobEvaluationRow.status == JobEvaluationStatus.RUNNING)
        .values(status=JobEvaluationStatus.COMPLETED, comparison=comparison, finished_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    if getattr(done, "rowcount", 0) == 1:
        log.info("job %s: evaluation completed: %s", row.job_id, comparison["verdict"])
        emit_event(
            session,
            tenant_id=row.tenant_id,
            type=EventType.FINE_TUNING_JOB_EVALUATION_COMPLETED,
            data_id=row.job_id,
        )


def _conclude_decision(session: Session, decision: PromotionDecisionRow) -> str | None:
    candidate_over, candidate, candidate_problem = _final(session, decision.candidate_run_id)
    baseline_over, baseline, baseline_problem = _final(session, decision.baseline_run_id)
    if not (candidate_over and baseline_over):
        return None
    if candidate is None or baseline is None:
        gate.refuse(
            session,
            decision,
            "evaluation_failed",
            f"Not promoted: {candidate_problem or baseline_problem}.",
        )
        return None
    alpha = float(decision.gate.get("alpha", ALPHA))
    comparison = _compare(session, decision.eval_id, candidate, baseline, alpha)
    verdicts = [criterion["verdict"] for criterion in comparison["criteria"]]
    return decide(session, decision, verdicts=verdicts, comparison=comparison)


def sweep(session: Session, *, now: datetime | None = None) -> int:
    """Queue again what a lost task left: evaluations `queued` for a while, and evaluations or
    waiting promotions whose runs are all over."""
    now = now or utcnow()
    queued = list(
        session.scalars(
            select(JobEvaluationRow.id)
            .where(
                JobEvaluationRow.status == JobEvaluationStatus.QUEUED,
                JobEvaluationRow.created_at < now - STALE_AFTER,
            )
            .limit(100)
        )
    )
    for evaluation_id in queued:
        outbox.enqueue(session, TaskName.EVALS_EVALUATE_JOB, evaluation_id=evaluation_id)
    pairs: list[tuple[str, str | None, str | None]] = [
        (row[0], row[1], row[2])
        for row in session.execute(
            select(JobEvaluationRow.job_id, JobEvaluationRow.base_run_id, JobEvaluationRow.fine_tuned_run_id)
            .where(JobEvaluationRow.status == JobEvaluationStatus.RUNNING)
            .limit(100)
        )
    ]
    pairs += [
        (row[0], row[1], row[2])
        for row in session.execute(
            select(
                PromotionDecisionRow.job_id,
                PromotionDecisionRow.candidate_run_id,
                PromotionDecisionRow.baseline_run_id,
            )
            .where(
                PromotionDecisionRow.status == gate.PENDING,
                PromotionDecisionRow.candidate_run_id.is_not(None),
            )
            .limit(100)
        )
    ]
    due = {job_id for job_id, *run_ids in pairs if all(_final(session, run_id)[0] for run_id in run_ids)}
    for job_id in sorted(due):
        outbox.enqueue(session, TaskName.EVALS_CONCLUDE_JOB, job_id=job_id)
    return len(queued) + len(due)
