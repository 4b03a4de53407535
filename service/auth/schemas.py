"""Admin API shapes for tenants and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from service.auth.keys import Scope
from service.auth.models import ApiKeyRow, TenantRow
from service.auth.service import TENANT_NAME
from service.clock import to_unix
from service.limits.models import LimitRow
from service.providers.credentials_store import TenantCredentialsRow

MAX_PER_MINUTE = 2_147_483_647  # what the limits' integer columns hold


def _limit(kind: str, owner: str) -> Any:
    """A per-minute limit field: a whole number from 0 (no limit) to MAX_PER_MINUTE, null for the
    default."""
    return Field(
        default=None,
        ge=0,
        le=MAX_PER_MINUTE,
        strict=True,
        description=f"Proxied {kind} per minute allowed; null: the service's default "
        f"(FTM_{owner}_{kind.upper()}_PER_MINUTE), 0: no limit.",
    )


class LimitsUpdate(BaseModel):
    """New per-minute limits; a field left out keeps its value, null returns it to the default."""

    model_config = ConfigDict(extra="forbid")
    requests_per_minute: int | None = _limit("requests", "KEY or FTM_TENANT")
    tokens_per_minute: int | None = _limit("tokens", "KEY or FTM_TENANT")


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        pattern=TENANT_NAME.pattern,
        description="Unique name: 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or "
        "digit.",
    )
    requests_per_minute: int | None = _limit("requests", "TENANT")
    tokens_per_minute: int | None = _limit("tokens", "TENANT")


PersonalDataPolicy = Literal["warn", "redact", "reject"]


class TenantUpdate(BaseModel):
    """The settings of a tenant that may change; a field left out is kept, a null clears it (a
    limit: back to the default)."""

    model_config = ConfigDict(extra="forbid")
    requests_per_minute: int | None = _limit("requests", "TENANT")
    tokens_per_minute: int | None = _limit("tokens", "TENANT")
    monthly_training_budget_usd: float | None = Field(
        default=None,
        ge=0,
        description="US dollars of estimated training cost the tenant's jobs may add up to per calendar "
        "month (UTC); null: no budget.",
    )
    personal_data_policy: PersonalDataPolicy | None = Field(
        default=None,
        description="The default for the tenant's uploads (warn, redact, reject); null: the service's "
        "(FTM_PERSONAL_DATA_POLICY).",
    )


class Tenant(BaseModel):
    id: str
    object: Literal["tenant"] = "tenant"
    name: str
    created_at: int
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    monthly_training_budget_usd: float | None = None
    personal_data_policy: PersonalDataPolicy | None = None

    @classmethod
    def from_row(cls, row: TenantRow, limits: LimitRow | None = None) -> Tenant:
        return cls(
            id=row.id,
            name=row.name,
            created_at=to_unix(row.created_at) or 0,
            requests_per_minute=limits.requests_per_minute if limits else None,
            tokens_per_minute=limits.tokens_per_minute if limits else None,
            monthly_training_budget_usd=row.monthly_training_budget_usd,
            personal_data_policy=cast(PersonalDataPolicy | None, row.personal_data_policy),
        )


class TenantList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Tenant]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str | None = Field(
        default=None,
        min_length=1,
        description="Name of the tenant the key belongs to; default: the caller's. "
        "A tenant admin names only its own tenant.",
    )
    name: str = Field(default="", max_length=128, description="A label for people.")
    scopes: list[Scope] | None = Field(
        default=None,
        description="Scopes granted; default: every feature scope (neither admin nor platform). "
        "A key grants only scopes it holds; only a platform key grants platform.",
    )
    expires_at: datetime | None = Field(default=None, description="When the key stops working (optional).")
    requests_per_minute: int | None = _limit("requests", "KEY")
    tokens_per_minute: int | None = _limit("tokens", "KEY")


class ApiKey(BaseModel):
    """An API key as listed: never the key itself, only its visible prefix."""

    id: str
    object: Literal["api_key"] = "api_key"
    tenant_id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @classmethod
    def from_row(cls, row: ApiKeyRow, limits: LimitRow | None = None) -> ApiKey:
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            name=row.name,
            prefix=row.prefix,
            scopes=list(row.scopes),
            created_at=to_unix(row.created_at) or 0,
            expires_at=to_unix(row.expires_at),
            revoked_at=to_unix(row.revoked_at),
            last_used_at=to_unix(row.last_used_at),
            requests_per_minute=limits.requests_per_minute if limits else None,
            tokens_per_minute=limits.tokens_per_minute if limits else None,
        )


class ApiKeyCreated(ApiKey):
    """The new key; `key` is shown this once and cannot be retrieved again."""

    key: str


class ApiKeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ApiKey]


class Caller(BaseModel):
    """Who the API key belongs to."""

    object: Literal["caller"] = "caller"
    tenant_id: str
    tenant: str
    key_id: str
    scopes: list[str]


class ProviderCredentialsSet(BaseModel):
    """A tenant's own credentials at a provider, used for its jobs, file copies, evaluation runs
    and proxied requests there instead of the operator's."""

    model_config = ConfigDict(extra="forbid")
    api_key: str = Field(
        min_length=1,
        max_length=512,
        description="The provider's API key. Stored encrypted; never shown again (only its last 4 characters).",
    )
    organization: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="OpenAI organization id, sent as `OpenAI-Organization` (optional).",
    )
    project: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="OpenAI project id, sent as `OpenAI-Project` (optional).",
    )
    verify: bool = Field(
        default=False,
        description="Check them first with `GET /models` at the provider; a refused key is a 400 "
        "`provider_credentials_refused` with the provider's message, and nothing is stored.",
    )


class ProviderCredentialsInfo(BaseModel):
    """A tenant's own credentials at a provider, as shown: never the key, only its last 4 characters."""

    id: str
    object: Literal["tenant.provider_credentials"] = "tenant.provider_credentials"
    tenant: str = Field(description="The tenant's name.")
    provider: str
    api_key_hint: str = Field(description="The key's last 4 characters ('' for a key of 8 or fewer).")
    organization: str | None = None
    project: str | None = None
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: TenantCredentialsRow, tenant: str) -> ProviderCredentialsInfo:
        return cls(
            id=row.id,
            tenant=tenant,
            provider=row.provider,
            api_key_hint=row.api_key_hint,
            organization=row.organization,
            project=row.project,
            created_at=to_unix(row.created_at) or 0,
            updated_at=to_unix(row.updated_at) or 0,
        )
