"""Who administers what, for the key routes.

A platform admin (a key with `platform`) manages the keys of every tenant. A tenant admin (a key
with `admin`) manages the keys of its own tenant only: another tenant's key, or another tenant's
name, is the same 404 as one that does not exist, so a tenant admin learns nothing of other
tenants. A key grants only scopes it holds (only a platform key grants `platform`) and revokes only
keys it could have created, so nobody gains or removes a power they do not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.auth.keys import Scope
from service.auth.models import ApiKeyRow, TenantRow
from service.auth.revocation import revoke_key
from service.auth.service import (
    Principal,
    api_key_not_found,
    create_key,
    list_keys,
    parse_scopes,
    tenant_not_found,
    update_tenant,
)
from service.errors import PermissionDenied


def get_administered_tenant(session: Session, caller: Principal, name: str | None) -> TenantRow:
    """The tenant named `name` (default: the caller's own) if the caller administers it, else a 404."""
    if name is None:
        own = session.get(TenantRow, caller.tenant_id)
        assert own is not None  # the caller's key belongs to it
        return own
    tenant = session.scalar(select(TenantRow).where(TenantRow.name == name))
    if tenant is None or not caller.administers(tenant.id):
        raise tenant_not_found(name)
    return tenant


def update_tenant_as(
    session: Session, caller: Principal, name: str, changes: Mapping[str, object]
) -> TenantRow:
    """Change a tenant's settings: its budget only as a platform admin, its default personal-data
    policy also as its own tenant admin."""
    tenant = get_administered_tenant(session, caller, name)
    if "monthly_training_budget_usd" in changes and not caller.has(Scope.PLATFORM):
        raise PermissionDenied(
            "Only a platform admin (a key with 'platform') sets a tenant's training budget.",
            param="monthly_training_budget_usd",
            code="scope_required",
        )
    return update_tenant(session, tenant, changes)


def get_administered_key(session: Session, caller: Principal, key_id: str) -> ApiKeyRow:
    """The key `key_id` if the caller administers its tenant, else a 404."""
    row = session.get(ApiKeyRow, key_id)
    if row is None or not caller.administers(row.tenant_id):
        raise api_key_not_found(key_id)
    return row


def create_key_as(
    session: Session,
    caller: Principal,
    *,
    tenant: str | None,
    scopes: Iterable[str] | None,
    name: str,
    expires_at: datetime | None,
) -> tuple[ApiKeyRow, str]:
    owner = get_administered_tenant(session, caller, tenant)
    granted = parse_scopes(scopes)
    withheld = _withheld(caller, granted)
    if withheld:
        raise PermissionDenied(
            f"This API key cannot grant the scope(s) {', '.join(withheld)}: a key grants only "
            "scopes it holds, and only a key with 'platform' grants 'platform'.",
            param="scopes",
            code="scope_not_grantable",
        )
    return create_key(session, owner, scopes=granted, name=name, expires_at=expires_at)


def list_keys_as(session: Session, caller: Principal, tenant: str | None) -> list[ApiKeyRow]:
    """The keys of `tenant`; without one, a platform admin gets every tenant's, a tenant admin its own."""
    if tenant is None and caller.has(Scope.PLATFORM):
        return list_keys(session)
    return list_keys(session, get_administered_tenant(session, caller, tenant).id)


def revoke_key_as(session: Session, caller: Principal, key_id: str) -> ApiKeyRow:
    row = get_administered_key(session, caller, key_id)
    withheld = _withheld(caller, row.scopes)
    if withheld:
        raise PermissionDenied(
            f"This API key cannot revoke a key with the scope(s) {', '.join(withheld)}, "
            "which it cannot grant.",
            param="key_id",
            code="scope_not_grantable",
        )
    return revoke_key(session, row)


def _withheld(caller: Principal, scopes: Iterable[str]) -> list[str]:
    """The scopes among `scopes` that `caller` cannot grant."""
    return sorted(scope for scope in scopes if not caller.can_grant(scope))
