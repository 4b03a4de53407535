"""A tenant's own provider credentials, as its admin (or a platform admin) sets, shows and deletes
them. Who may: the same rule as for keys (`service.auth.administration`): a tenant admin its own
tenant, a platform admin any; another tenant's name is a 404. What they do once set:
`service.providers.credentials_store`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.auth.administration import get_administered_tenant
from service.auth.models import TenantRow
from service.auth.service import Principal
from service.errors import InvalidRequest, NotFound
from service.providers.credentials import ProviderCredentials
from service.providers.credentials_store import (
    NewCredentials,
    TenantCredentialsRow,
    delete_credentials,
    find_credentials,
    save_credentials,
)
from service.providers.errors import ProviderRejected
from service.providers.registry import ProviderRegistry

REFUSED = "provider_credentials_refused"


def credentials_not_found(tenant: str, provider: str) -> NotFound:
    return NotFound(
        f"Tenant '{tenant}' has no credentials of its own for provider '{provider}'.",
        param="provider",
        code="provider_credentials_not_found",
    )


def _target(
    session: Session, caller: Principal, providers: ProviderRegistry, name: str, provider: str
) -> TenantRow:
    tenant = get_administered_tenant(session, caller, name)  # another tenant's: 404
    providers.config(provider)  # not configured: a 400 naming `provider`
    return tenant


def verify(providers: ProviderRegistry, provider: str, new: NewCredentials) -> None:
    """Ask the provider whether it accepts them (`GET /models`); a refusal is a 400 with its message.
    Called with no transaction open."""
    candidate = ProviderCredentials("", provider, new.api_key, new.organization, new.project)
    try:
        providers.fine_tuning(provider, candidate).check_access()
    except ProviderRejected as refused:
        raise InvalidRequest(
            f"The provider '{provider}' refused these credentials ({refused.status_code}): {refused.message}",
            param="api_key",
            code=REFUSED,
        ) from None


def set_credentials_as(
    session: Session,
    caller: Principal,
    providers: ProviderRegistry,
    *,
    tenant: str,
    provider: str,
    new: NewCredentials,
    check: bool,
) -> tuple[TenantRow, TenantCredentialsRow, bool]:
    """Set them (verified first with `check`): the tenant, the row and whether it is new. Refused
    before anything is asked or written when no encryption key is configured (503)."""
    owner = _target(session, caller, providers, tenant, provider)
    providers.cipher.encrypt("")  # CredentialsKeyMissing now, not after asking the provider
    if check:
        session.commit()  # no transaction stays open while the provider is asked
        verify(providers, provider, new)
    row, created = save_credentials(session, providers.cipher, tenant_id=owner.id, provider=provider, new=new)
    return owner, row, created


def show_credentials_as(
    session: Session, caller: Principal, providers: ProviderRegistry, *, tenant: str, provider: str
) -> tuple[TenantRow, TenantCredentialsRow]:
    owner = _target(session, caller, providers, tenant, provider)
    row = find_credentials(session, tenant_id=owner.id, provider=provider)
    if row is None:
        raise credentials_not_found(owner.name, provider)
    return owner, row


def delete_credentials_as(
    session: Session, caller: Principal, providers: ProviderRegistry, *, tenant: str, provider: str
) -> tuple[TenantRow, TenantCredentialsRow]:
    owner = _target(session, caller, providers, tenant, provider)
    row = delete_credentials(session, tenant_id=owner.id, provider=provider)
    if row is None:
        raise credentials_not_found(owner.name, provider)
    return owner, row
