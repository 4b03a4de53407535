"""Eval-gated promotion: a deployment whose promotion has a `gate` holds each new model of its
family until the model's comparison with the deployment's current target passes the gate's rule.

The flow, in three transactions that each stand alone:

1. the job's success records a `pending` decision per gated deployment (`hold`), or a `refused`
   one at once when the job gets no evaluation to decide by;
2. the evals feature, once it has created the job's evaluation runs, names the decision's baseline
   (the deployment's arm of highest weight) and the two runs to compare (`attach`);
3. when both runs are final it calls `service.deployments.promotion.decide` with the comparison's per-criterion verdicts: a pass
   makes the promoted version in the same transaction as the decision (as an ungated promotion
   does with the job's success); a failure records why.

A decision is taken once: the update from `pending` is conditional, so a task that arrives twice
(acks_late) or two workers at once cannot promote twice. The decision keeps its evidence (the
comparison as the evals feature rendered it); deployments know nothing of evals beyond those values.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.clock import utcnow
from service.deployments.models import DeploymentRow, DeploymentVersionRow, PromotionDecisionRow
from service.deployments.schemas import Gate, Promotion
from service.deployments.service import current_version
from service.ids import new_id
from service.tenancy import keyset_page, owned

log = logging.getLogger(__name__)

PENDING, PROMOTED, REFUSED = "pending", "promoted", "refused"


def passes(gate: Gate, verdicts: Sequence[str]) -> bool:
    """The gate's rule over per-criterion verdicts (`better`, `worse`, `no_difference`)."""
    if not verdicts or "worse" in verdicts:
        return False
    return gate.require == "not_worse" or "better" in verdicts


def rule_text(gate: Gate) -> str:
    if gate.require == "better":
        return f"no criterion worse and at least one better (sign test, p < {gate.alpha:g})"
    return f"no criterion worse (sign test, p < {gate.alpha:g})"


def main_target(version: DeploymentVersionRow) -> str:
    """The arm that serves most of the traffic (the first listed among equals)."""
    best = max(version.targets, key=lambda target: int(target["weight"]))
    return str(best["model"])


def hold(
    session: Session,
    row: DeploymentRow,
    promotion: Promotion,
    *,
    model: str,
    job_id: str,
    evaluated: bool,
) -> PromotionDecisionRow:
    """Record that `model` waits for its evaluation (or, with none coming, that it is refused)."""
    assert promotion.gate is not None
    now = utcnow()
    decision = PromotionDecisionRow(
        id=new_id("promo_"),
        tenant_id=row.tenant_id,
        deployment_id=row.id,
        job_id=job_id,
        model=model,
        gate=promotion.gate.model_dump(),
        status=PENDING,
        created_at=now,
    )
    if not evaluated:
        decision.status, decision.reason, decision.decided_at = REFUSED, "no_evaluation", now
        decision.message = (
            "The job has no evaluation to decide by (no validation file, or evaluation switched off), "
            "and the deployment's gate promotes only evaluated models."
        )
    session.add(decision)
    log.info("deployment %s holds %s for its gate (job %s)", row.name, model, job_id)
    return decision


def pending_for_job(session: Session, *, tenant_id: str, job_id: str) -> list[PromotionDecisionRow]:
    return list(
        session.scalars(
            owned(PromotionDecisionRow, tenant_id)
            .where(PromotionDecisionRow.job_id == job_id, PromotionDecisionRow.status == PENDING)
            .order_by(PromotionDecisionRow.created_at, PromotionDecisionRow.id)
        )
    )


def baseline_of(session: Session, decision: PromotionDecisionRow) -> str | None:
    """The model to compare the candidate with: the deployment's main arm now."""
    row = session.get(DeploymentRow, decision.deployment_id)
    return main_target(current_version(session, row)) if row is not None else None


def attach(
    decision: PromotionDecisionRow,
    *,
    baseline_model: str,
    eval_id: str,
    candidate_run_id: str,
    baseline_run_id: str,
) -> None:
    decision.baseline_model = baseline_model
    decision.eval_id = eval_id
    decision.candidate_run_id = candidate_run_id
    decision.baseline_run_id = baseline_run_id


def refuse(session: Session, decision: PromotionDecisionRow, reason: str, message: str) -> bool:
    """Record a refusal, once; False when the decision was taken already."""
    return settle(session, decision, status=REFUSED, reason=reason, message=message)


def settle(session: Session, decision: PromotionDecisionRow, **values: Any) -> bool:
    settled = session.execute(
        update(PromotionDecisionRow)
        .where(PromotionDecisionRow.id == decision.id, PromotionDecisionRow.status == PENDING)
        .values(decided_at=utcnow(), **values)
        .execution_options(synchronize_session="fetch")
    )
    return getattr(settled, "rowcount", 0) == 1


def list_decisions(
    session: Session, row: DeploymentRow, *, after: str | None, limit: int
) -> tuple[list[PromotionDecisionRow], bool]:
    """A page of the deployment's promotion decisions, newest first."""
    return keyset_page(
        session,
        owned(PromotionDecisionRow, row.tenant_id).where(PromotionDecisionRow.deployment_id == row.id),
        keys=[PromotionDecisionRow.created_at, PromotionDecisionRow.id],
        identity=PromotionDecisionRow.id,
        after=after,
        limit=limit,
    )
