"""Administration routes: tenants (scope `platform`) and API keys (scope `admin` or `platform`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from service.auth import administration, service
from service.auth.models import TenantRow
from service.auth.schemas import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    Caller,
    Tenant,
    TenantCreate,
    TenantList,
    TenantUpdate,
)
from service.auth.service import Principal
from service.cache_changes import Change, publish
from service.contract import errors
from service.deps import DbSession, KeyAdminCaller, PlatformCaller, get_principal, get_runtime
from service.routing import ServiceRoute

router = APIRouter(prefix="/v1", tags=["admin"], route_class=ServiceRoute)


@router.get("/me", response_model=Caller)
def whoami(principal: Annotated[Principal, Depends(get_principal)]) -> Caller:
    """The caller: its tenant and the scopes of the key used."""
    return Caller(
        tenant_id=principal.tenant_id,
        tenant=principal.tenant_name,
        key_id=principal.key_id,
        scopes=sorted(principal.scopes),
    )


@router.post("/tenants", response_model=Tenant)
def create_tenant(body: TenantCreate, session: DbSession, _: PlatformCaller) -> Tenant:
    """Create a tenant (an internal service or team). Platform admins only."""
    return Tenant.from_row(service.create_tenant(session, body.name))


@router.post("/tenants/{tenant}", response_model=Tenant, responses=errors(403, 404))
def update_tenant(tenant: str, body: TenantUpdate, session: DbSession, caller: KeyAdminCaller) -> Tenant:
    """Change a tenant's monthly training budget (platform admins) or its default personal-data
    policy (also its own tenant admin). Fields left out are kept; a null clears one."""
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    return Tenant.from_row(administration.update_tenant_as(session, caller, tenant, changes))


@router.get("/tenants", response_model=TenantList)
def list_tenants(session: DbSession, _: PlatformCaller) -> TenantList:
    """List tenants. Platform admins only."""
    rows = session.scalars(select(TenantRow).order_by(TenantRow.name))
    return TenantList(data=[Tenant.from_row(row) for row in rows])


@router.post("/api_keys", response_model=ApiKeyCreated, responses=errors(404))
def create_api_key(body: ApiKeyCreate, session: DbSession, caller: KeyAdminCaller) -> ApiKeyCreated:
    """Create an API key for a tenant the caller administers (a tenant admin: its own; a platform
    admin: any). The key grants only scopes the caller holds. The key is in this response only;
    store it now."""
    row, key = administration.create_key_as(
        session, caller, tenant=body.tenant, scopes=body.scopes, name=body.name, expires_at=body.expires_at
    )
    return ApiKeyCreated(**ApiKey.from_row(row).model_dump(), key=key)


@router.get("/api_keys", response_model=ApiKeyList, responses=errors(404))
def list_api_keys(session: DbSession, caller: KeyAdminCaller, tenant: str | None = None) -> ApiKeyList:
    """List API keys (prefixes only) of one tenant the caller administers; without `tenant`, a
    tenant admin gets its own tenant's and a platform admin every tenant's."""
    rows = administration.list_keys_as(session, caller, tenant)
    return ApiKeyList(data=[ApiKey.from_row(row) for row in rows])


@router.delete("/api_keys/{key_id}", response_model=ApiKey)
def revoke_api_key(key_id: str, request: Request, session: DbSession, caller: KeyAdminCaller) -> ApiKey:
    """Revoke an API key of a tenant the caller administers; every API process stops accepting it
    within a second (within the key cache's lifetime, 5 s by default, while Redis is down). The last
    active platform key cannot be revoked (409)."""
    revoked = ApiKey.from_row(administration.revoke_key_as(session, caller, key_id))
    # Committed first, so no API process can re-cache the key from the row as it was.
    session.commit()
    request.app.state.authenticator.forget_key(key_id)
    publish(get_runtime(request).redis, Change(key_id=key_id))
    return revoked
