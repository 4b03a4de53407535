"""`/v1/deployments` (scope `deployments`): stable names that clients pass as `model`, with
weighted targets, fallbacks, sticky routing and a version history with rollback.

A change commits before this process's cached route for the name is dropped, so the next request
here routes by the new version; other API processes follow within their route cache's lifetime.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from service.contract import IDEMPOTENCY_409, errors
from service.deployments import gate, service
from service.deployments.models import DeploymentRow
from service.deployments.schemas import (
    Deployment,
    DeploymentCreate,
    DeploymentDeleted,
    DeploymentRollback,
    DeploymentUpdate,
    DeploymentVersion,
    PromotionDecision,
)
from service.deps import DbSession, DeploymentsCaller, IdempotentCreate
from service.idempotency.service import reload_owned
from service.pagination import After, Page
from service.proxy.routes import invalidate_route
from service.routing import ServiceRoute

router = APIRouter(prefix="/v1", tags=["deployments"], route_class=ServiceRoute)

DeploymentName = Annotated[str, Path(description="The deployment's name, e.g. `support-bot`.")]


def get_deployment_or_404(
    deployment: DeploymentName, caller: DeploymentsCaller, session: DbSession
) -> DeploymentRow:
    return service.get_deployment(session, deployment, tenant_id=caller.tenant_id)


CurrentDeployment = Annotated[DeploymentRow, Depends(get_deployment_or_404)]


def _changed(request: Request, session: DbSession, row: DeploymentRow) -> None:
    # Commit before dropping the cached route, so no request can re-cache the old version.
    session.commit()
    invalidate_route(request.app.state, tenant_id=row.tenant_id, model=row.name)


@router.post(
    "/deployments",
    response_model=Deployment,
    responses=errors(
        409, s409="`deployment_exists`: your tenant has a deployment of that name. " + IDEMPOTENCY_409
    ),
)
def create_deployment(
    body: DeploymentCreate,
    request: Request,
    caller: DeploymentsCaller,
    session: DbSession,
    idempotency: IdempotentCreate,
) -> Deployment:
    """Create a deployment (its version 1). A target or fallback that is not a model you may call
    is a 400 `model_not_found` naming it. With an `Idempotency-Key`, a retry returns the deployment
    the first request created."""

    def make() -> Deployment:
        row, version = service.create_deployment(
            session, body, tenant_id=caller.tenant_id, created_by=caller.key_id
        )
        return Deployment.from_rows(row, version)

    created = idempotency.create(
        session,
        tenant_id=caller.tenant_id,
        route="POST /v1/deployments",
        parameters=body.model_dump(mode="json", exclude_unset=True),
        make=make,
        reload=reload_owned(
            session,
            DeploymentRow,
            caller.tenant_id,
            lambda row: Deployment.from_rows(row, service.current_version(session, row)),
        ),
    )
    session.commit()  # before dropping the cached route, so no request can re-cache the old one
    invalidate_route(request.app.state, tenant_id=caller.tenant_id, model=created.name)
    return created


@router.get("/deployments", response_model=Page[Deployment])
def list_deployments(
    caller: DeploymentsCaller,
    session: DbSession,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Deployments per page (1-100).")] = 20,
) -> Page[Deployment]:
    """List your tenant's deployments with their current versions, newest first."""
    rows, has_more = service.list_deployments(session, tenant_id=caller.tenant_id, after=after, limit=limit)
    return Page[Deployment].of([Deployment.from_rows(row, version) for row, version in rows], has_more)


@router.get("/deployments/{deployment}", response_model=Deployment)
def retrieve_deployment(deployment: CurrentDeployment, session: DbSession) -> Deployment:
    """Retrieve a deployment and its current version."""
    return Deployment.from_rows(deployment, service.current_version(session, deployment))


@router.post("/deployments/{deployment}", response_model=Deployment)
def update_deployment(
    body: DeploymentUpdate,
    deployment: CurrentDeployment,
    request: Request,
    caller: DeploymentsCaller,
    session: DbSession,
) -> Deployment:
    """Change a deployment: a new version, the current one with the fields given replaced."""
    version = service.update_deployment(session, deployment, body, created_by=caller.key_id)
    _changed(request, session, deployment)
    return Deployment.from_rows(deployment, version)


@router.delete("/deployments/{deployment}", response_model=DeploymentDeleted)
def delete_deployment(
    deployment: CurrentDeployment, request: Request, session: DbSession
) -> DeploymentDeleted:
    """Delete a deployment and its history; its name stops routing."""
    answer = DeploymentDeleted(id=deployment.id, name=deployment.name)
    service.delete_deployment(session, deployment)
    _changed(request, session, deployment)
    return answer


@router.get("/deployments/{deployment}/versions", response_model=Page[DeploymentVersion])
def list_deployment_versions(
    deployment: CurrentDeployment,
    session: DbSession,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Versions per page (1-100).")] = 20,
) -> Page[DeploymentVersion]:
    """List a deployment's versions, newest first; each is immutable."""
    rows, has_more = service.list_versions(session, deployment, after=after, limit=limit)
    return Page[DeploymentVersion].of(
        [DeploymentVersion.from_rows(deployment, row) for row in rows], has_more
    )


@router.get("/deployments/{deployment}/promotions", response_model=Page[PromotionDecision])
def list_promotion_decisions(
    deployment: CurrentDeployment,
    session: DbSession,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Decisions per page (1-100).")] = 20,
) -> Page[PromotionDecision]:
    """List what a gated deployment decided about each new model of its family, newest first:
    `pending` while the model is compared with the current target, then `promoted` (with the
    version it made) or `refused`, with the reason and the comparison as evidence."""
    rows, has_more = gate.list_decisions(session, deployment, after=after, limit=limit)
    return Page[PromotionDecision].of(
        [PromotionDecision.from_rows(deployment, row) for row in rows], has_more
    )


@router.post("/deployments/{deployment}/rollback", response_model=Deployment)
def rollback_deployment(
    body: DeploymentRollback,
    deployment: CurrentDeployment,
    request: Request,
    caller: DeploymentsCaller,
    session: DbSession,
) -> Deployment:
    """Return to an earlier version: a new version equal to it becomes current. An unknown version
    is a 400 naming `version`."""
    version = service.rollback_deployment(session, deployment, body.version, created_by=caller.key_id)
    _changed(request, session, deployment)
    return Deployment.from_rows(deployment, version)
