"""`/v1/models`: list, retrieve and delete (a fine-tuned model), as the `openai` SDK calls them."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request

from service.clock import to_unix
from service.contract import errors
from service.deployments import service as deployments
from service.deps import DbSession, FineTuningCaller, InferenceCaller, get_runtime
from service.models import service
from service.models.schemas import Model, ModelDeleted, ModelList
from service.proxy.routes import invalidate_route
from service.routing import ServiceRoute

router = APIRouter(prefix="/v1", tags=["models"], route_class=ServiceRoute)

# `:path` because model names contain ':' and may contain '/' (sent percent-encoded).
ModelName = Annotated[
    str, Path(description="The model's name, e.g. `ft:gpt-4o-mini-2024-07-18:acme::abc123`.")
]


def _deployment_models(session: DbSession, caller: InferenceCaller) -> list[Model]:
    return [
        Model(
            id=row.name,
            created=to_unix(row.created_at) or 0,
            owned_by=caller.tenant_name,
            deployment_version=row.version,
        )
        for row, _ in deployments.all_deployments(session, tenant_id=caller.tenant_id)
    ]


@router.get("/models", response_model=ModelList, response_model_exclude_none=True)
def list_models(request: Request, caller: InferenceCaller, session: DbSession) -> ModelList:
    """List the models you can call: your tenant's fine-tuned models (newest first, `owned_by` your
    tenant's name), your tenant's deployments (newest first, with `deployment_version`), then the
    base models (`owned_by: "system"`)."""
    routes = service.list_routes(
        session,
        tenant_id=caller.tenant_id,
        tenant_name=caller.tenant_name,
        catalog=get_runtime(request).providers,
    )
    fine_tuned = [Model.from_route(route) for route in routes if route.owned_by == caller.tenant_name]
    base = [Model.from_route(route) for route in routes if route.owned_by != caller.tenant_name]
    return ModelList(data=[*fine_tuned, *_deployment_models(session, caller), *base])


@router.get("/models/{model:path}", response_model=Model, response_model_exclude_none=True)
def retrieve_model(model: ModelName, request: Request, caller: InferenceCaller, session: DbSession) -> Model:
    """Retrieve one model you can call, or one of your tenant's deployments. Another tenant's model,
    a deleted or an unknown one is a 404 `model_not_found`."""
    for found in _deployment_models(session, caller):
        if found.id == model:
            return found
    route = service.resolve_route(
        session,
        tenant_id=caller.tenant_id,
        tenant_name=caller.tenant_name,
        model=model,
        catalog=get_runtime(request).providers,
    )
    return Model.from_route(route)


@router.delete(
    "/models/{model:path}",
    response_model=ModelDeleted,
    responses=errors(
        409, 503, s409="`model_in_use`: a deployment still routes to the model; the message names it."
    ),
)
def delete_model(model: ModelName, request: Request, caller: FineTuningCaller) -> ModelDeleted:
    """Delete one of your tenant's fine-tuned models, at its provider and here; it can no longer be
    called. Base models cannot be deleted (403 `model_not_deletable`); another tenant's or an
    unknown model is a 404 `model_not_found`.

    The API process that handles this stops routing to the model at once; other API processes do
    so within their route cache's lifetime (a few seconds). A model that a deployment's current
    version targets (or falls back to) is not deleted: a 409 `model_in_use` names the deployments."""
    runtime = get_runtime(request)
    # Committed before the cached route is dropped, so no request can re-cache it from the old row.
    service.delete_fine_tuned_model(
        runtime.sessions,
        tenant_id=caller.tenant_id,
        model=model,
        providers=runtime.providers,
        still_used=partial(deployments.refuse_if_deployed, tenant_id=caller.tenant_id, model=model),
    )
    invalidate_route(request.app.state, tenant_id=caller.tenant_id, model=model)
    return ModelDeleted(id=model)
