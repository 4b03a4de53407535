"""Admin routes: tenants and API keys (scope `admin`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from service.auth import service
from service.auth.dependencies import AdminCaller, DbSession, get_principal
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
)
from service.auth.service import Principal
from service.contract import errors
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
def create_tenant(body: TenantCreate, session: DbSession, _: AdminCaller) -> Tenant:
    """Create a tenant (an internal service or team)."""
    return Tenant.from_row(service.create_tenant(session, body.name))


@router.get("/tenants", response_model=TenantList)
def list_tenants(session: DbSession, _: AdminCaller) -> TenantList:
    """List tenants."""
    rows = session.scalars(select(TenantRow).order_by(TenantRow.name))
    return TenantList(data=[Tenant.from_row(row) for row in rows])


@router.post("/api_keys", response_model=ApiKeyCreated, responses=errors(404))
def create_api_key(body: ApiKeyCreate, session: DbSession, _: AdminCaller) -> ApiKeyCreated:
    """Create an API key for a tenant. The key is in this response only; store it now."""
    tenant = service.get_tenant(session, body.tenant)
    row, key = service.create_key(
        session, tenant, scopes=body.scopes, name=body.name, expires_at=body.expires_at
    )
    return ApiKeyCreated(**ApiKey.from_row(row).model_dump(), key=key)


@router.get("/api_keys", response_model=ApiKeyList, responses=errors(404))
def list_api_keys(session: DbSession, _: AdminCaller, tenant: str | None = None) -> ApiKeyList:
    """List API keys (prefixes only), optionally of one tenant."""
    tenant_id = service.get_tenant(session, tenant).id if tenant is not None else None
    return ApiKeyList(data=[ApiKey.from_row(row) for row in service.list_keys(session, tenant_id)])


@router.delete("/api_keys/{key_id}", response_model=ApiKey)
def revoke_api_key(key_id: str, session: DbSession, _: AdminCaller) -> ApiKey:
    """Revoke an API key; it stops working within the key cache's lifetime (5 s by default)."""
    return ApiKey.from_row(service.revoke_key(session, key_id))
