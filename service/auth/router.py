"""Administration routes: tenants (scope `platform`), API keys and a tenant's own provider
credentials (scope `admin` or `platform`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from service.auth import administration, credentials, service
from service.auth.keys import Scope
from service.auth.models import TenantRow
from service.auth.schemas import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    Caller,
    LimitsUpdate,
    ProviderCredentialsInfo,
    ProviderCredentialsSet,
    Tenant,
    TenantCreate,
    TenantList,
    TenantUpdate,
)
from service.auth.service import Principal
from service.cache_changes import Change, publish
from service.contract import errors
from service.deps import DbSession, KeyAdminCaller, PlatformCaller, get_principal, get_runtime
from service.errors import PermissionDenied
from service.limits.store import LIMIT_FIELDS, limits_of, set_limits
from service.providers.credentials_cache import forget_credentials
from service.providers.credentials_store import NewCredentials
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
    """Create a tenant (an internal service or team), optionally with its per-minute proxy limits.
    Platform admins only."""
    tenant = service.create_tenant(session, body.name)
    limits = set_limits(
        session, tenant_id=tenant.id, owner_id=tenant.id, limits=body.model_dump(include=set(LIMIT_FIELDS))
    )
    return Tenant.from_row(tenant, limits)


@router.post("/tenants/{name}", response_model=Tenant, responses=errors(403, 404))
def update_tenant(
    name: str, body: TenantUpdate, request: Request, session: DbSession, caller: KeyAdminCaller
) -> Tenant:
    """Change a tenant's settings (the fields given; a null clears one, a limit back to its
    default): its per-minute proxy limits and monthly training budget (platform admins), and its
    uploads' default personal-data policy (also its own tenant admin; another tenant is a 404).
    Every API process applies new limits within a second."""
    given = body.model_fields_set
    limits_given = {field: getattr(body, field) for field in given if field in LIMIT_FIELDS}
    others = {field: getattr(body, field) for field in given if field not in LIMIT_FIELDS}
    tenant = administration.update_tenant_as(session, caller, name, others)
    if limits_given:
        if not caller.has(Scope.PLATFORM):
            raise PermissionDenied(
                "Only a platform admin (a key with 'platform') changes a tenant's limits.",
                param=next(iter(limits_given)),
                code="scope_required",
            )
        set_limits(session, tenant_id=tenant.id, owner_id=tenant.id, limits=limits_given)
    updated = Tenant.from_row(tenant, limits_of(session, [tenant.id]).get(tenant.id))
    session.commit()  # before the caches drop the old limits, so none re-reads them
    if limits_given:
        request.app.state.authenticator.forget_tenant(tenant.id)
        publish(get_runtime(request).redis, Change(tenant_id=tenant.id))
    return updated


@router.get("/tenants", response_model=TenantList)
def list_tenants(session: DbSession, _: PlatformCaller) -> TenantList:
    """List tenants. Platform admins only."""
    rows = list(session.scalars(select(TenantRow).order_by(TenantRow.name)))
    limits = limits_of(session, [row.id for row in rows])
    return TenantList(data=[Tenant.from_row(row, limits.get(row.id)) for row in rows])


@router.post("/api_keys", response_model=ApiKeyCreated, responses=errors(404))
def create_api_key(body: ApiKeyCreate, session: DbSession, caller: KeyAdminCaller) -> ApiKeyCreated:
    """Create an API key for a tenant the caller administers (a tenant admin: its own; a platform
    admin: any). The key grants only scopes the caller holds. The key is in this response only;
    store it now."""
    row, key = administration.create_key_as(
        session,
        caller,
        tenant=body.tenant,
        scopes=body.scopes,
        name=body.name,
        expires_at=body.expires_at,
    )
    limits = set_limits(
        session, tenant_id=row.tenant_id, owner_id=row.id, limits=body.model_dump(include=set(LIMIT_FIELDS))
    )
    return ApiKeyCreated(**ApiKey.from_row(row, limits).model_dump(), key=key)


@router.get("/api_keys", response_model=ApiKeyList, responses=errors(404))
def list_api_keys(session: DbSession, caller: KeyAdminCaller, tenant: str | None = None) -> ApiKeyList:
    """List API keys (prefixes only) of one tenant the caller administers; without `tenant`, a
    tenant admin gets its own tenant's and a platform admin every tenant's."""
    rows = administration.list_keys_as(session, caller, tenant)
    limits = limits_of(session, [row.id for row in rows])
    return ApiKeyList(data=[ApiKey.from_row(row, limits.get(row.id)) for row in rows])


@router.post("/api_keys/{key_id}", response_model=ApiKey, responses=errors(404))
def update_api_key_limits(
    key_id: str, body: LimitsUpdate, request: Request, session: DbSession, caller: KeyAdminCaller
) -> ApiKey:
    """Change the per-minute proxy limits of a key the caller administers (the fields given; null:
    back to the default). Every API process applies them within a second."""
    row = administration.get_administered_key(session, caller, key_id)
    limits = set_limits(
        session, tenant_id=row.tenant_id, owner_id=row.id, limits=body.model_dump(exclude_unset=True)
    )
    updated = ApiKey.from_row(row, limits)
    session.commit()
    request.app.state.authenticator.forget_key(key_id)
    publish(get_runtime(request).redis, Change(key_id=key_id))
    return updated


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


CREDENTIALS_PATH = "/tenants/{name}/providers/{provider}/credentials"


def _credentials_changed(request: Request, tenant_id: str, provider: str) -> None:
    """Committed: this process and every other API process drop what they cached (within a second)."""
    forget_credentials(request.app.state, tenant_id=tenant_id, provider=provider)
    publish(get_runtime(request).redis, Change(tenant_id=tenant_id, provider=provider))


@router.put(CREDENTIALS_PATH, response_model=ProviderCredentialsInfo, responses=errors(400, 403, 404, 503))
def set_provider_credentials(
    name: str,
    provider: str,
    body: ProviderCredentialsSet,
    request: Request,
    session: DbSession,
    caller: KeyAdminCaller,
) -> ProviderCredentialsInfo:
    """Set the tenant's own credentials for `provider` (its tenant admin, or a platform admin):
    its new jobs, file copies, evaluation runs and proxied requests there use them instead of the
    operator's. Setting them again replaces the key (same account: the jobs made with the old key
    go on with the new one). The key is stored encrypted (503 `credentials_key_missing` when the
    service has no FTM_CREDENTIALS_KEY) and shown only as its last 4 characters. With `verify`,
    the provider is asked first (`GET /models`). Idempotent: the same body again changes nothing
    but `updated_at`. Every API process uses them within a second."""
    new = NewCredentials(body.api_key, body.organization, body.project)
    tenant, row, _ = credentials.set_credentials_as(
        session,
        caller,
        get_runtime(request).providers,
        tenant=name,
        provider=provider,
        new=new,
        check=body.verify,
    )
    shown = ProviderCredentialsInfo.from_row(row, tenant.name)
    session.commit()
    _credentials_changed(request, tenant.id, provider)
    return shown


@router.get(CREDENTIALS_PATH, response_model=ProviderCredentialsInfo, responses=errors(400, 404))
def show_provider_credentials(
    name: str, provider: str, request: Request, session: DbSession, caller: KeyAdminCaller
) -> ProviderCredentialsInfo:
    """The tenant's own credentials for `provider`: the key's last 4 characters, the ids, when
    they were set; a 404 `provider_credentials_not_found` when it uses the operator's."""
    tenant, row = credentials.show_credentials_as(
        session, caller, get_runtime(request).providers, tenant=name, provider=provider
    )
    return ProviderCredentialsInfo.from_row(row, tenant.name)


@router.delete(CREDENTIALS_PATH, response_model=ProviderCredentialsInfo, responses=errors(400, 404))
def delete_provider_credentials(
    name: str, provider: str, request: Request, session: DbSession, caller: KeyAdminCaller
) -> ProviderCredentialsInfo:
    """Delete the tenant's own credentials for `provider`: its new jobs, evaluation runs and
    proxied requests there use the operator's again. Jobs created with them cannot be reached
    any more and fail at their next refresh with `provider_credentials_deleted` (they are never
    followed with the operator's key, another account)."""
    tenant, row = credentials.delete_credentials_as(
        session, caller, get_runtime(request).providers, tenant=name, provider=provider
    )
    shown = ProviderCredentialsInfo.from_row(row, tenant.name)
    session.commit()
    _credentials_changed(request, tenant.id, provider)
    return shown
