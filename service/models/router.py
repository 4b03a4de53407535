"""`/v1/models`: list, retrieve and delete (a fine-tuned model), as the `openai` SDK calls them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from service.contract import errors
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


@router.get("/models", response_model=ModelList)
def list_models(request: Request, caller: InferenceCaller, session: DbSession) -> ModelList:
    """List the models you can call: your tenant's fine-tuned models (newest first, `owned_by` your
    tenant's name), then the base models (`owned_by: "system"`)."""
    routes = service.list_routes(
        session,
        tenant_id=caller.tenant_id,
        tenant_name=caller.tenant_name,
        default_provider=get_runtime(request).settings.default_provider,
    )
    return ModelList(data=[Model.from_route(route) for route in routes])


@router.get("/models/{model:path}", response_model=Model)
def retrieve_model(model: ModelName, request: Request, caller: InferenceCaller, session: DbSession) -> Model:
    """Retrieve one model you can call. Another tenant's model, a deleted or an unknown one is a 404
    `model_not_found`."""
    route = service.resolve_route(
        session,
        tenant_id=caller.tenant_id,
        tenant_name=caller.tenant_name,
        model=model,
        default_provider=get_runtime(request).settings.default_provider,
    )
    return Model.from_route(route)


@router.delete("/models/{model:path}", response_model=ModelDeleted, responses=errors(503))
def delete_model(model: ModelName, request: Request, caller: FineTuningCaller) -> ModelDeleted:
    """Delete one of your tenant's fine-tuned models, at its provider and here; it can no longer be
    called. Base models cannot be deleted (403 `model_not_deletable`); another tenant's or an
    unknown model is a 404 `model_not_found`.

    The API process that handles this stops routing to the model at once; other API processes do
    so within their route cache's lifetime (a few seconds)."""
    runtime = get_runtime(request)
    # Committed before the cached route is dropped, so no request can re-cache it from the old row.
    service.delete_fine_tuned_model(
        runtime.sessions, tenant_id=caller.tenant_id, model=model, providers=runtime.providers
    )
    invalidate_route(request.app.state, tenant_id=caller.tenant_id, model=model)
    return ModelDeleted(id=model)
