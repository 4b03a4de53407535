"""Deployments of a tenant: create, change (each change a new immutable version), roll back, delete.

Every query is scoped by tenant through `service.tenancy`: another tenant's deployment is the same
404 `deployment_not_found` as a missing one. A deployment's targets and fallbacks must be models
the tenant may call (its own live fine-tuned models, or base models), and its name may not look
like a model, so a request's `model` means one thing only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.clock import utcnow
from service.deployments.models import DeploymentRow, DeploymentVersionRow
from service.deployments.schemas import (
    NAME_PATTERN,
    DeploymentCreate,
    DeploymentUpdate,
    Promotion,
    Sticky,
    Target,
)
from service.errors import Conflict, InvalidRequest, NotFound
from service.ids import new_id
from service.models.catalog import is_catalog_model
from service.models.models import FineTunedModelRow
from service.tenancy import keyset_page, owned
from service.webhooks.service import emit_event

_NAME = re.compile(NAME_PATTERN)


def deployment_not_found(name: str) -> NotFound:
    return NotFound(f"No deployment named '{name}'.", param="deployment", code="deployment_not_found")


def check_name(name: str) -> str:
    """`name` if it may name a deployment; 400 naming `name` if not."""
    if name.startswith("ft:") or not _NAME.match(name) or len(name) > 64:
        raise InvalidRequest(
            f"'{name}' cannot name a deployment: use up to 64 letters, digits, '.', '_' and '-', "
            "starting with a letter or digit.",
            param="name",
            code="invalid_value",
        )
    if is_catalog_model(name):
        raise InvalidRequest(
            f"'{name}' is a base model's name; a deployment's name may not look like a model.",
            param="name",
            code="invalid_value",
        )
    return name


def get_deployment(session: Session, name: str, *, tenant_id: str) -> DeploymentRow:
    row = session.scalar(owned(DeploymentRow, tenant_id).where(DeploymentRow.name == name))
    if row is None:
        raise deployment_not_found(name)
    return row


def current_version(session: Session, row: DeploymentRow) -> DeploymentVersionRow:
    return _version(session, row, row.version)


def create_deployment(
    session: Session, req: DeploymentCreate, *, tenant_id: str, created_by: str | None
) -> tuple[DeploymentRow, DeploymentVersionRow]:
    name = check_name(req.name)
    if session.scalar(owned(DeploymentRow, tenant_id).where(DeploymentRow.name == name)) is not None:
        raise _exists(name)
    _check_targets(session, tenant_id, req.targets, req.fallbacks)
    now = utcnow()
    row = DeploymentRow(
        id=new_id("dep_"), tenant_id=tenant_id, name=name, version=0, created_at=now, updated_at=now
    )
    try:
        with session.begin_nested():  # a concurrent create of the name wins: a 409 here, not a 500
            session.add(row)
            session.flush()
    except IntegrityError:
        raise _exists(name) from None
    version = new_version(
        session,
        row,
        targets=req.targets,
        fallbacks=req.fallbacks,
        sticky=req.sticky,
        promotion=req.promotion,
        reason="created",
        created_by=created_by,
    )
    return row, version


def update_deployment(
    session: Session, row: DeploymentRow, req: DeploymentUpdate, *, created_by: str | None
) -> DeploymentVersionRow:
    """A new version: the current one with the fields `req` sets replaced."""
    current = current_version(session, row)
    given = req.model_fields_set
    return new_version(
        session,
        row,
        targets=req.targets if req.targets is not None else stored_targets(current),
        fallbacks=req.fallbacks if req.fallbacks is not None else list(current.fallbacks),
        sticky=req.sticky if "sticky" in given else stored_sticky(current),
        promotion=req.promotion if "promotion" in given else stored_promotion(current),
        reason="updated",
        created_by=created_by,
    )


def rollback_deployment(
    session: Session, row: DeploymentRow, version: int, *, created_by: str | None
) -> DeploymentVersionRow:
    """A new version equal to `version` (its models must still be callable)."""
    earlier = session.scalar(
        select(DeploymentVersionRow).where(
            DeploymentVersionRow.deployment_id == row.id, DeploymentVersionRow.version == version
        )
    )
    if earlier is None:
        raise InvalidRequest(
            f"The deployment '{row.name}' has no version {version}.", param="version", code="invalid_value"
        )
    return new_version(
        session,
        row,
        targets=stored_targets(earlier),
        fallbacks=list(earlier.fallbacks),
        sticky=stored_sticky(earlier),
        promotion=stored_promotion(earlier),
        reason="rolled_back",
        created_by=created_by,
        rolled_back_to=version,
    )


def delete_deployment(session: Session, row: DeploymentRow) -> None:
    """Delete the deployment and its versions; emits `deployment.deleted` in the same transaction."""
    tenant_id, name = row.tenant_id, row.name
    session.execute(delete(DeploymentVersionRow).where(DeploymentVersionRow.deployment_id == row.id))
    session.delete(row)
    session.flush()
    emit_event(session, tenant_id=tenant_id, type="deployment.deleted", data_id=name)


def list_deployments(
    session: Session, *, tenant_id: str, after: str | None, limit: int
) -> tuple[list[tuple[DeploymentRow, DeploymentVersionRow]], bool]:
    """A page of the tenant's deployments (newest first) with their current versions."""
    rows, has_more = keyset_page(
        session,
        owned(DeploymentRow, tenant_id),
        keys=[DeploymentRow.created_at, DeploymentRow.id],
        identity=DeploymentRow.id,
        after=after,
        limit=limit,
    )
    return [(row, current_version(session, row)) for row in rows], has_more


def all_deployments(session: Session, *, tenant_id: str) -> list[tuple[DeploymentRow, DeploymentVersionRow]]:
    """Every deployment of the tenant (newest first) with its current version, in one query."""
    query = (
        owned(DeploymentRow, tenant_id)
        .join(
            DeploymentVersionRow,
            (DeploymentVersionRow.deployment_id == DeploymentRow.id)
            & (DeploymentVersionRow.version == DeploymentRow.version),
        )
        .add_columns(DeploymentVersionRow)
        .order_by(DeploymentRow.created_at.desc(), DeploymentRow.id.desc())
    )
    return [(row, version) for row, version in session.execute(query)]


def list_versions(
    session: Session, row: DeploymentRow, *, after: str | None, limit: int
) -> tuple[list[DeploymentVersionRow], bool]:
    """A page of the deployment's versions, newest first."""
    return keyset_page(
        session,
        owned(DeploymentVersionRow, row.tenant_id).where(DeploymentVersionRow.deployment_id == row.id),
        keys=[DeploymentVersionRow.version],
        identity=DeploymentVersionRow.id,
        after=after,
        limit=limit,
    )


def deployments_using(session: Session, *, tenant_id: str, model: str) -> list[str]:
    """The names of the tenant's deployments whose current version sends requests to `model`
    (as a target or a fallback)."""
    return [
        row.name
        for row, current in all_deployments(session, tenant_id=tenant_id)
        if model in _models_of(current)
    ]


def refuse_if_deployed(session: Session, *, tenant_id: str, model: str) -> None:
    """409 naming the deployments if any of the tenant's deployments still uses `model`."""
    names = deployments_using(session, tenant_id=tenant_id, model=model)
    if names:
        listed = ", ".join(f"'{name}'" for name in sorted(names))
        raise Conflict(
            f"The model '{model}' is used by the deployment(s) {listed}; change them before deleting it.",
            param="model",
            code="model_in_use",
        )


def new_version(
    session: Session,
    row: DeploymentRow,
    *,
    targets: Sequence[Target],
    fallbacks: Sequence[str],
    sticky: Sticky | None,
    promotion: Promotion | None,
    reason: str,
    created_by: str | None,
    rolled_back_to: int | None = None,
) -> DeploymentVersionRow:
    """Add the next version of `row` and make it current. The row is read again under a row lock
    (PostgreSQL), so two changes at once take turns instead of both claiming one number; where
    there is no row lock (SQLite) the loser of that race is a 409, never a 500. Emits
    `deployment.updated` (about the deployment's name) in the same transaction."""
    _check_targets(session, row.tenant_id, targets, fallbacks)
    session.refresh(row, with_for_update=True)
    now = utcnow()
    version = DeploymentVersionRow(
        id=new_id("depver_"),
        tenant_id=row.tenant_id,
        deployment_id=row.id,
        version=row.version + 1,
        targets=[{"model": target.model, "weight": target.weight} for target in targets],
        fallbacks=list(fallbacks),
        sticky=sticky.model_dump() if sticky is not None else None,
        promotion=promotion.model_dump(exclude_none=True) if promotion is not None else None,
        reason=reason,
        rolled_back_to=rolled_back_to,
        created_by=created_by,
        created_at=now,
    )
    row.version = version.version
    row.updated_at = now
    session.add(version)
    name = row.name
    try:
        session.flush()
    except IntegrityError:  # SQLite has no row lock: a concurrent change took this number first
        raise Conflict(
            f"The deployment '{name}' changed while this change was made; retrieve it and try again.",
            param="deployment",
            code="deployment_changed",
        ) from None
    emit_event(session, tenant_id=row.tenant_id, type="deployment.updated", data_id=name)
    return version


def _exists(name: str) -> Conflict:
    return Conflict(f"A deployment named '{name}' exists already.", param="name", code="deployment_exists")


def _check_targets(
    session: Session, tenant_id: str, targets: Sequence[Target], fallbacks: Sequence[str]
) -> None:
    models = [target.model for target in targets]
    for index, model in enumerate(models):
        if model in models[:index]:
            raise InvalidRequest(
                f"The model '{model}' is a target twice; give it one weight.",
                param=f"targets[{index}].model",
                code="invalid_value",
            )
    if sum(target.weight for target in targets) == 0:
        raise InvalidRequest(
            "At least one target needs a weight above 0.", param="targets", code="invalid_value"
        )
    for index, model in enumerate(fallbacks):
        if model in fallbacks[:index]:
            raise InvalidRequest(
                f"The model '{model}' is a fallback twice.", param=f"fallbacks[{index}]", code="invalid_value"
            )
    callable_ = _callable_models(session, tenant_id, [*models, *fallbacks])
    named = [(f"targets[{i}].model", model) for i, model in enumerate(models)]
    named += [(f"fallbacks[{i}]", model) for i, model in enumerate(fallbacks)]
    for param, model in named:
        if model not in callable_:
            raise InvalidRequest(
                f"The model '{model}' does not exist or you do not have access to it.",
                param=param,
                code="model_not_found",
            )


def _callable_models(session: Session, tenant_id: str, models: Iterable[str]) -> set[str]:
    wanted = set(models)
    found = {model for model in wanted if is_catalog_model(model)}
    fine_tuned = wanted - found
    if fine_tuned:
        found |= set(
            session.scalars(
                owned(FineTunedModelRow, tenant_id)
                .where(FineTunedModelRow.id.in_(fine_tuned), FineTunedModelRow.deleted_at.is_(None))
                .with_only_columns(FineTunedModelRow.id)
            )
        )
    return found


def _version(session: Session, row: DeploymentRow, number: int) -> DeploymentVersionRow:
    version = session.scalar(
        select(DeploymentVersionRow).where(
            DeploymentVersionRow.deployment_id == row.id, DeploymentVersionRow.version == number
        )
    )
    assert version is not None, f"deployment {row.id} lacks its current version {number}"
    return version


def _models_of(version: DeploymentVersionRow) -> set[str]:
    return {target["model"] for target in version.targets} | set(version.fallbacks)


def stored_targets(version: DeploymentVersionRow) -> list[Target]:
    return [Target(**target) for target in version.targets]


def stored_sticky(version: DeploymentVersionRow) -> Sticky | None:
    return Sticky(**version.sticky) if version.sticky else None


def stored_promotion(version: DeploymentVersionRow) -> Promotion | None:
    return Promotion(**version.promotion) if version.promotion else None
