"""Which models a tenant may call and where each one lives.

A fine-tuned model belongs to the tenant whose job made it; base models in the catalog may be
called by every tenant, on the default provider. Anything else (another tenant's model, an unknown
or deleted one) is a 404 `model_not_found`, never a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db import session_scope
from service.errors import Conflict, NotFound, PermissionDenied
from service.jobs.models import JobRow
from service.models.catalog import BASE_MODELS, EMBEDDING_MODELS, is_catalog_model
from service.models.models import FineTunedModelRow
from service.providers.credentials import ProviderCredentials
from service.providers.credentials_store import credentials_by_id, load_credentials
from service.providers.errors import ProviderRejected
from service.providers.registry import ProviderRegistry
from service.tenancy import get_owned, owned


@dataclass(frozen=True)
class ModelRoute:
    """Where to send a request for a model: the provider and the provider's name for it."""

    model: str
    provider: str
    upstream_model: str
    owned_by: str
    created_at: datetime | None


def model_not_found(model: str) -> NotFound:
    return NotFound(
        f"The model '{model}' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def register_fine_tuned_model(
    session: Session, *, model: str, tenant_id: str, provider: str, base_model: str, job_id: str
) -> FineTunedModelRow:
    """Record that `tenant_id` owns `model` (idempotent)."""
    row = session.get(FineTunedModelRow, model)
    if row is None:
        row = FineTunedModelRow(
            id=model,
            tenant_id=tenant_id,
            provider=provider,
            base_model=base_model,
            job_id=job_id,
            created_at=utcnow(),
        )
        session.add(row)
    return row


class Catalog(Protocol):
    """Who serves the models that are not a tenant's fine-tuned ones (`ProviderRegistry`)."""

    def provider_for(self, model: str) -> str | None: ...

    def served_models(self) -> list[tuple[str, str]]: ...


def resolve_route(
    session: Session, *, tenant_id: str, tenant_name: str, model: str, catalog: Catalog
) -> ModelRoute:
    row = session.scalar(
        owned(FineTunedModelRow, tenant_id).where(
            FineTunedModelRow.id == model, FineTunedModelRow.deleted_at.is_(None)
        )
    )
    if row is not None:
        return ModelRoute(model, row.provider, model, tenant_name, row.created_at)
    provider = catalog.provider_for(model)
    if provider is not None:
        return ModelRoute(model, provider, model, "system", None)
    raise model_not_found(model)


def find_route(
    session: Session, *, tenant_id: str, tenant_name: str, model: str, catalog: Catalog
) -> ModelRoute | None:
    """`resolve_route`, or None when no model of that name routes for the tenant."""
    try:
        return resolve_route(
            session,
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            model=model,
            catalog=catalog,
        )
    except NotFound:
        return None


def list_routes(session: Session, *, tenant_id: str, tenant_name: str, catalog: Catalog) -> list[ModelRoute]:
    rows = session.scalars(
        owned(FineTunedModelRow, tenant_id)
        .where(FineTunedModelRow.deleted_at.is_(None))
        .order_by(FineTunedModelRow.created_at.desc())
    )
    fine_tuned = [ModelRoute(row.id, row.provider, row.id, tenant_name, row.created_at) for row in rows]
    base = [ModelRoute(m.id, _served(catalog, m.id), m.id, m.owned_by, None) for m in BASE_MODELS.values()]
    embedding = [ModelRoute(m, _served(catalog, m), m, "system", None) for m in EMBEDDING_MODELS]
    served = [ModelRoute(m, provider, m, "system", None) for m, provider in catalog.served_models()]
    return fine_tuned + base + embedding + served


def _served(catalog: Catalog, model: str) -> str:
    provider = catalog.provider_for(model)
    assert provider is not None  # a catalog model always has one: the default provider
    return provider


def owned_fine_tuned_model(session: Session, *, tenant_id: str, model: str) -> FineTunedModelRow:
    return get_owned(
        session,
        FineTunedModelRow,
        model,
        tenant_id=tenant_id,
        not_found=model_not_found,
        where=(FineTunedModelRow.deleted_at.is_(None),),
    )


def _account_of(
    session: Session, providers: ProviderRegistry, model: FineTunedModelRow
) -> ProviderCredentials | None:
    """The credentials of the account the model lives in: those its job was created with (None:
    the operator's), or the tenant's current ones for a model without a job here."""
    job_credentials = session.scalar(select(JobRow.credentials_id).where(JobRow.id == model.job_id))
    if job_credentials is not None:
        found = credentials_by_id(session, providers.cipher, job_credentials)
        if found is None:
            raise Conflict(
                f"The model '{model.id}' was trained under the tenant's own credentials at provider "
                f"'{model.provider}', which were deleted; it cannot be deleted there with other credentials.",
                param="model",
                code="provider_credentials_deleted",
            )
        return found
    if model.job_id is not None:
        return None
    return load_credentials(session, providers.cipher, tenant_id=model.tenant_id, provider=model.provider)


def delete_fine_tuned_model(
    sessions: sessionmaker[Session],
    *,
    tenant_id: str,
    model: str,
    providers: ProviderRegistry,
    still_used: Callable[[Session], None] | None = None,
) -> None:
    """Delete `tenant_id`'s fine-tuned `model` at its provider, then mark it deleted here. The
    provider is called with no transaction open.

    Base models cannot be deleted (403). `still_used(session)` runs once the model is known to be
    the tenant's and before the provider is asked, to refuse (raise) if something still routes to
    it. A provider 404 counts as deleted (it is gone there); any other provider failure changes
    nothing here and is raised.
    """
    with session_scope(sessions) as session:
        if is_catalog_model(model) and session.get(FineTunedModelRow, model) is None:
            raise PermissionDenied(
                f"The model '{model}' is a base model; only your own fine-tuned models can be deleted.",
                param="model",
                code="model_not_deletable",
            )
        owned = owned_fine_tuned_model(session, tenant_id=tenant_id, model=model)
        provider = owned.provider
        if still_used is not None:
            still_used(session)
        credentials = _account_of(session, providers, owned)
    try:
        providers.fine_tuning(provider, credentials).delete_model(model)
    except ProviderRejected as error:
        if error.status_code != 404:
            raise
    with session_scope(sessions) as session:
        owned_fine_tuned_model(session, tenant_id=tenant_id, model=model).deleted_at = utcnow()
