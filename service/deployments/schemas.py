"""The deployments API's objects (a native extra: the `openai` SDK has no deployments resource)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from service.clock import to_unix
from service.deployments.models import DeploymentRow, DeploymentVersionRow, PromotionDecisionRow

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
SUFFIX_PATTERN = r"^[A-Za-z0-9._-]+$"
HEADER_PATTERN = r"^[A-Za-z0-9-]+$"
STICKY_HEADER = "X-FTM-Sticky-Key"
MAX_TARGETS = 10
MAX_FALLBACKS = 5
MAX_WEIGHT = 10_000

ModelName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="A fine-tuned model of your tenant (`ft:…`) or a base model.",
    ),
]


class Target(BaseModel):
    """One arm of a deployment: a model and its share of the traffic."""

    model_config = ConfigDict(extra="forbid")
    model: ModelName
    weight: StrictInt = Field(
        default=1,
        ge=0,
        le=MAX_WEIGHT,
        description="The arm's weight: it gets weight / (sum of weights) of the requests. 0 keeps it "
        "listed but idle.",
    )


class Sticky(BaseModel):
    """Keep one caller on one arm, by a hash of a key that the request carries."""

    model_config = ConfigDict(extra="forbid")
    source: Literal["user", "header"] = Field(
        description="`user`: the request body's `user` field; `header`: the request header `header`."
    )
    header: str = Field(
        default=STICKY_HEADER,
        min_length=1,
        max_length=64,
        pattern=HEADER_PATTERN,
        description="The header holding the key, when `source` is `header`.",
    )


class Gate(BaseModel):
    """Promote a new model only when its evaluation shows it is good enough. The new model and the
    deployment's current target (its arm of highest weight) are both run on the job's evaluation
    items, and compared per testing criterion with an exact two-sided sign test at `alpha`:

    - `better`: no criterion is significantly worse and at least one is significantly better;
    - `not_worse`: no criterion is significantly worse.

    Until then the job's model is not promoted; the decision and its evidence are listed at
    `GET /v1/deployments/{deployment}/promotions`."""

    model_config = ConfigDict(extra="forbid")
    require: Literal["better", "not_worse"] = Field(
        default="better", description="The rule the new model must pass (see above)."
    )
    alpha: float = Field(
        default=0.05, gt=0, lt=0.5, description="The sign test's significance level, per criterion."
    )


class Promotion(BaseModel):
    """Follow a family of fine-tuning jobs: each one that succeeds becomes a target (with a `gate`,
    only once its evaluation passes the gate's rule)."""

    model_config = ConfigDict(extra="forbid")
    suffix: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=SUFFIX_PATTERN,
        description="Follow the jobs created with this `suffix`.",
    )
    metadata: dict[str, str] | None = Field(
        default=None,
        min_length=1,
        max_length=15,
        description="Follow the jobs whose `metadata` holds every one of these pairs.",
    )
    canary_weight: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_WEIGHT,
        description="Add the new model beside the current targets at this weight (a canary). Left "
        "out: the new model replaces the targets straight away.",
    )
    gate: Gate | None = Field(
        default=None,
        description="Promote only a model whose evaluation against the current target passes this "
        "rule. Left out: every new model of the family is promoted when its job succeeds.",
    )

    @model_validator(mode="after")
    def _follows_something(self) -> Self:
        if self.suffix is None and not self.metadata:
            raise ValueError("a promotion follows jobs by `suffix`, `metadata` or both")
        return self


class DeploymentCreate(BaseModel):
    """Create a deployment: a name that clients pass as `model`, and where it sends requests."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=NAME_PATTERN,
        description="Unique within your tenant; letters, digits, '.', '_' and '-', starting with a "
        "letter or digit. It may not look like a model: not `ft:…` nor a base model's name.",
    )
    targets: list[Target] = Field(
        min_length=1, max_length=MAX_TARGETS, description="The arms, each a distinct model with a weight."
    )
    fallbacks: list[ModelName] = Field(
        default_factory=list,
        max_length=MAX_FALLBACKS,
        description="Models tried in this order when the chosen arm's provider fails (5xx, 429, a "
        "timeout or a dropped connection) before any byte was sent to the caller.",
    )
    sticky: Sticky | None = Field(
        default=None, description="Sticky routing; left out: each request is drawn."
    )
    promotion: Promotion | None = Field(default=None, description="Automatic promotion of new models.")


class DeploymentUpdate(BaseModel):
    """Change a deployment (a new version); fields left out keep their value, and `sticky` or
    `promotion` set to null are switched off."""

    model_config = ConfigDict(extra="forbid")
    targets: list[Target] | None = Field(default=None, min_length=1, max_length=MAX_TARGETS)
    fallbacks: list[ModelName] | None = Field(default=None, max_length=MAX_FALLBACKS)
    sticky: Sticky | None = None
    promotion: Promotion | None = None


class DeploymentRollback(BaseModel):
    """Make a new version equal to an earlier one."""

    model_config = ConfigDict(extra="forbid")
    version: StrictInt = Field(ge=1, le=2_147_483_647, description="The version to return to.")


class _Routing(BaseModel):
    targets: list[Target]
    fallbacks: list[str]
    sticky: Sticky | None
    promotion: Promotion | None


class Deployment(_Routing):
    """A deployment and its current version."""

    id: str = Field(description="`dep_…`")
    object: Literal["deployment"] = "deployment"
    name: str
    version: int = Field(description="The current version's number.")
    created_at: int
    updated_at: int

    @classmethod
    def from_rows(cls, row: DeploymentRow, current: DeploymentVersionRow) -> Deployment:
        return cls(
            id=row.id,
            name=row.name,
            version=row.version,
            created_at=to_unix(row.created_at) or 0,
            updated_at=to_unix(row.updated_at) or 0,
            **_routing(current),
        )


class DeploymentVersion(_Routing):
    """One immutable version of a deployment."""

    id: str = Field(description="`depver_…`")
    object: Literal["deployment.version"] = "deployment.version"
    deployment: str = Field(description="The deployment's name.")
    version: int
    reason: Literal["created", "updated", "rolled_back", "promoted"] = Field(
        description="What made this version."
    )
    rolled_back_to: int | None = Field(description="For a rollback: the version it copied.")
    created_by: str | None = Field(
        description="The API key (`key_…`) that made it, or for a promotion the job (`ftjob-…`)."
    )
    created_at: int

    @classmethod
    def from_rows(cls, row: DeploymentRow, version: DeploymentVersionRow) -> DeploymentVersion:
        return cls(
            id=version.id,
            deployment=row.name,
            version=version.version,
            reason=version.reason,
            rolled_back_to=version.rolled_back_to,
            created_by=version.created_by,
            created_at=to_unix(version.created_at) or 0,
            **_routing(version),
        )


class PromotionDecision(BaseModel):
    """What a gated deployment decided about a new model of its family, with the evidence."""

    id: str = Field(description="`promo_…`")
    object: Literal["deployment.promotion"] = "deployment.promotion"
    deployment: str = Field(description="The deployment's name.")
    fine_tuning_job_id: str
    model: str = Field(description="The candidate: the job's fine-tuned model.")
    baseline_model: str | None = Field(
        description="The deployment's target it was compared with (its arm of highest weight)."
    )
    gate: Gate = Field(description="The rule, as it stood when the job succeeded.")
    status: Literal["pending", "promoted", "refused"] = Field(
        description="`pending` while the comparison runs; then `promoted` or `refused`."
    )
    reason: str | None = Field(
        description="`gate_passed`, `gate_failed`, `no_evaluation` (the job has no evaluation), "
        "`evaluation_failed`, `target_changed` (the deployment's target changed meanwhile), "
        "`already_target`, `not_followed` (the deployment stopped following the family) or "
        "`promotion_failed` (the new version was refused, e.g. its model was deleted meanwhile)."
    )
    message: str | None = Field(description="Why, in a sentence.")
    evidence: list[str] = Field(description="The comparison's evidence, one line per criterion.")
    comparison: dict[str, Any] | None = Field(
        description="The comparison of the candidate's run with the baseline's (`eval.comparison`)."
    )
    eval_id: str | None
    candidate_run_id: str | None
    baseline_run_id: str | None
    version: int | None = Field(description="The version a promotion made.")
    created_at: int
    decided_at: int | None

    @classmethod
    def from_rows(cls, row: DeploymentRow, decision: PromotionDecisionRow) -> PromotionDecision:
        comparison = decision.comparison
        return cls(
            id=decision.id,
            deployment=row.name,
            fine_tuning_job_id=decision.job_id,
            model=decision.model,
            baseline_model=decision.baseline_model,
            gate=Gate(**decision.gate),
            status=decision.status,
            reason=decision.reason,
            message=decision.message,
            evidence=list((comparison or {}).get("evidence", [])),
            comparison=comparison,
            eval_id=decision.eval_id,
            candidate_run_id=decision.candidate_run_id,
            baseline_run_id=decision.baseline_run_id,
            version=decision.version,
            created_at=to_unix(decision.created_at) or 0,
            decided_at=to_unix(decision.decided_at),
        )


class DeploymentDeleted(BaseModel):
    """The answer to deleting a deployment."""

    id: str
    object: Literal["deployment"] = "deployment"
    name: str
    deleted: bool = True


def _routing(version: DeploymentVersionRow) -> dict[str, object]:
    return {
        "targets": [Target(**target) for target in version.targets],
        "fallbacks": list(version.fallbacks),
        "sticky": Sticky(**version.sticky) if version.sticky else None,
        "promotion": Promotion(**version.promotion) if version.promotion else None,
    }
