"""Automatic promotion: a deployment that follows a family of fine-tuning jobs gets a new version
targeting each new model of that family as soon as its job succeeds.

The jobs feature calls `promote_new_model` in the transaction that records the job's success, so
the new version commits with it or not at all. It takes plain values, not a job row: deployments
know nothing of jobs (the dependency runs one way, jobs -> deployments).

- Straight away (no `canary_weight`): the new model becomes the only target, weight 100.
- As a canary: the new model joins the current targets at `canary_weight`; a canary that an
  earlier promotion added, and that nobody has changed since, is replaced rather than kept.

With a `gate`, the new model waits for its evaluation instead (`service.deployments.gate`), and
`decide` promotes it, the same way, once its comparison with the current target passes the rule.

The fallbacks, sticky routing and promotion settings carry over. The caller announces the
promoted deployments to the API processes once the transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from service.deployments.gate import PROMOTED, REFUSED, hold, main_target, passes, rule_text, settle
from service.deployments.models import DeploymentRow, DeploymentVersionRow, PromotionDecisionRow
from service.deployments.schemas import MAX_TARGETS, Gate, Promotion, Target
from service.deployments.service import (
    all_deployments,
    current_version,
    new_version,
    stored_promotion,
    stored_sticky,
    stored_targets,
)
from service.errors import ServiceError

log = logging.getLogger(__name__)

PROMOTED_WEIGHT = 100


def follows(promotion: Promotion, *, suffix: str | None, metadata: Mapping[str, str] | None) -> bool:
    """Whether a job with this `suffix` and `metadata` belongs to the family `promotion` follows."""
    if promotion.suffix is not None and promotion.suffix != suffix:
        return False
    wanted = promotion.metadata or {}
    held = metadata or {}
    return all(held.get(key) == value for key, value in wanted.items())


def promoted_targets(current: DeploymentVersionRow, promotion: Promotion, model: str) -> list[Target] | None:
    """The targets of the version that promotes `model`; None when it is a target already."""
    targets = stored_targets(current)
    if any(target.model == model for target in targets):
        return None
    if promotion.canary_weight is None:
        return [Target(model=model, weight=PROMOTED_WEIGHT)]
    if current.reason == "promoted" and len(targets) > 1:
        targets = targets[:-1]  # the previous canary, untouched since its promotion
    targets = targets[: MAX_TARGETS - 1]
    return [*targets, Target(model=model, weight=promotion.canary_weight)]


def promote_new_model(
    session: Session,
    *,
    tenant_id: str,
    model: str,
    job_id: str,
    suffix: str | None,
    metadata: Mapping[str, str] | None,
    evaluated: bool = False,
) -> list[str]:
    """A new version, targeting `model`, of every deployment of `tenant_id` that follows the job's
    family and has no gate; the names of the deployments promoted. A gated deployment records a
    pending decision instead (refused at once when the job is not `evaluated`)."""
    promoted = []
    for row, current in all_deployments(session, tenant_id=tenant_id):
        promotion = stored_promotion(current)
        if promotion is None or not follows(promotion, suffix=suffix, metadata=metadata):
            continue
        targets = promoted_targets(current, promotion, model)
        if targets is None:
            continue
        if promotion.gate is not None:
            hold(session, row, promotion, model=model, job_id=job_id, evaluated=evaluated)
            continue
        new_version(
            session,
            row,
            targets=targets,
            fallbacks=[fallback for fallback in current.fallbacks if fallback != model],
            sticky=stored_sticky(current),
            promotion=promotion,
            reason="promoted",
            created_by=job_id,
        )
        log.info("deployment %s promoted %s (job %s)", row.name, model, job_id)
        promoted.append(row.name)
    return promoted


def decide(
    session: Session,
    decision: PromotionDecisionRow,
    *,
    verdicts: Sequence[str],
    comparison: dict[str, Any],
) -> str | None:
    """Promote or refuse by the gate's rule, once; the deployment's name when promoted (for the
    caller to announce once this transaction commits)."""
    gate = Gate(**decision.gate)
    row = session.get(DeploymentRow, decision.deployment_id)
    if row is None:
        return None
    current = current_version(session, row)
    promotion = stored_promotion(current)
    rule = rule_text(gate)
    if not passes(gate, verdicts):
        settle(
            session,
            decision,
            status=REFUSED,
            reason="gate_failed",
            message=f"Not promoted: the gate requires {rule}; the comparison with "
            f"{decision.baseline_model} says {comparison.get('verdict')}.",
            comparison=comparison,
        )
        return None
    problem = _still_wanted(current, promotion, decision)
    if problem is not None:
        settle(
            session, decision, status=REFUSED, reason=problem[0], message=problem[1], comparison=comparison
        )
        return None
    assert promotion is not None
    targets = promoted_targets(current, promotion, decision.model)
    assert targets is not None  # `_still_wanted` checked the model is not a target yet
    try:
        with session.begin_nested():  # the decision and its version commit together, or neither
            if not settle(
                session,
                decision,
                status=PROMOTED,
                reason="gate_passed",
                message=f"Promoted: the gate requires {rule}; the comparison with "
                f"{decision.baseline_model} says {comparison.get('verdict')}.",
                comparison=comparison,
            ):
                return None
            made = new_version(
                session,
                row,
                targets=targets,
                fallbacks=[fallback for fallback in current.fallbacks if fallback != decision.model],
                sticky=stored_sticky(current),
                promotion=promotion,
                reason="promoted",
                created_by=decision.job_id,
            )
    except ServiceError as error:  # e.g. the model was deleted meanwhile
        settle(
            session,
            decision,
            status=REFUSED,
            reason="promotion_failed",
            message=f"The comparison passed the gate, but the new version was refused: {error.message}",
            comparison=comparison,
        )
        return None
    decision.version = made.version
    log.info("deployment %s promoted %s past its gate (job %s)", row.name, decision.model, decision.job_id)
    return row.name


def _still_wanted(
    current: DeploymentVersionRow, promotion: Promotion | None, decision: PromotionDecisionRow
) -> tuple[str, str] | None:
    if promotion is None or promotion.gate is None:
        return (
            "not_followed",
            "The deployment no longer has a gated promotion; change it to promote this model by hand.",
        )
    if any(target["model"] == decision.model for target in current.targets):
        return "already_target", f"{decision.model} is a target of the deployment already."
    if decision.baseline_model is not None and main_target(current) != decision.baseline_model:
        return (
            "target_changed",
            f"The deployment's target changed from {decision.baseline_model} to {main_target(current)} "
            "while the comparison ran; the comparison no longer says anything about the current target.",
        )
    return None
