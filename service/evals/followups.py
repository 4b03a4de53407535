"""Which jobs a run's end concerns: the job whose evaluation compares it, or a gated promotion
waiting on it. Kept apart from `service.evals.job_evaluations` so that `service.evals.service`
(which that module builds on) can queue the follow-up when a run ends or is deleted."""

from __future__ import annotations

from sqlalchemy import or_
from sqlalchemy.orm import Session

from service.deployments.models import PromotionDecisionRow
from service.evals.models import JobEvaluationRow, JobEvaluationStatus
from service.outbox import service as outbox
from service.tasks import TaskName
from service.tenancy import owned

PENDING = "pending"


def jobs_linked_to(session: Session, tenant_id: str, run_ids: list[str]) -> set[str]:
    """The jobs whose evaluation, or a promotion waiting on it, compares any of these runs."""
    if not run_ids:
        return set()
    evaluations = (
        owned(JobEvaluationRow, tenant_id)
        .with_only_columns(JobEvaluationRow.job_id)
        .where(
            JobEvaluationRow.status == JobEvaluationStatus.RUNNING,
            or_(JobEvaluationRow.base_run_id.in_(run_ids), JobEvaluationRow.fine_tuned_run_id.in_(run_ids)),
        )
    )
    decisions = (
        owned(PromotionDecisionRow, tenant_id)
        .with_only_columns(PromotionDecisionRow.job_id)
        .where(
            PromotionDecisionRow.status == PENDING,
            or_(
                PromotionDecisionRow.candidate_run_id.in_(run_ids),
                PromotionDecisionRow.baseline_run_id.in_(run_ids),
            ),
        )
    )
    return set(session.scalars(evaluations)) | set(session.scalars(decisions))


def conclude_later(session: Session, tenant_id: str, run_ids: list[str]) -> None:
    """Queue `evals.conclude_job` for the jobs these runs' end concerns (in the caller's transaction)."""
    for job_id in sorted(jobs_linked_to(session, tenant_id, run_ids)):
        outbox.enqueue(session, TaskName.EVALS_CONCLUDE_JOB, job_id=job_id)
