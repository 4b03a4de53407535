"""Automatic promotion: a deployment that follows a family of fine-tuning jobs gets a new version
targeting each new model of that family as soon as its job succeeds.

The jobs feature calls `promote_new_model` in the transaction that records the job's success, so
the new version commits with it or not at all. It takes plain values, not a job row: deployments
know nothing of jobs (the dependency runs one way, jobs -> deployments).

- Straight away (no `canary_weight`): the new model becomes the only target, weight 100.
- As a canary: the new model joins the current targets at `canary_weight`; a canary that an
  earlier promotion added, and that nobody has changed since, is replaced rather than kept.

The fallbacks, sticky routing and promotion settings carry over. The caller announces the
promoted deployments to the API processes once the transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.orm import Session

from service.deployments.models import DeploymentVersionRow
from service.deployments.schemas import MAX_TARGETS, Promotion, Target
from service.deployments.service import (
    all_deployments,
    new_version,
    stored_promotion,
    stored_sticky,
    stored_targets,
)

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
) -> list[str]:
    """A new version, targeting `model`, of every deployment of `tenant_id` that follows the job's
    family; the names of the deployments promoted."""
    promoted = []
    for row, current in all_deployments(session, tenant_id=tenant_id):
        promotion = stored_promotion(current)
        if promotion is None or not follows(promotion, suffix=suffix, metadata=metadata):
            continue
        targets = promoted_targets(current, promotion, model)
        if targets is None:
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
