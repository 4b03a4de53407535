"""Where tenants' provider credentials are kept: one row per (tenant, provider), the key encrypted
(`service.providers.credentials`), its last 4 characters beside it to show.

Setting them again replaces the key (and the ids) in the same row, which keeps its id: that is a
rotated key of the same account, and the jobs created with the row keep working with the new key.
Deleting them removes the row; the jobs that remember it (`JobRow.credentials_id`) can no longer
reach their provider job, and fail at their next refresh with `provider_credentials_deleted`
rather than being polled with the operator's key under another account (`service.jobs.refresh`).
A tenant without credentials for a provider (never set, or deleted) uses the operator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from service.clock import utcnow
from service.db import Base, UTCDateTime
from service.ids import new_id
from service.providers.credentials import CredentialsCipher, ProviderCredentials, hint_of
from service.tenancy import owned

CREDENTIALS_ID_PREFIX = "cred_"


class TenantCredentialsRow(Base):
    """A tenant's own credentials at one provider; `api_key_encrypted` is a Fernet token."""

    __tablename__ = "tenant_provider_credentials"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", name="uq_tenant_provider_credentials"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    api_key_hint: Mapped[str] = mapped_column(String(8))
    organization: Mapped[str | None] = mapped_column(String(128), nullable=True)
    project: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class NewCredentials:
    """What a tenant sets: the key in clear (encrypted before it is written)."""

    api_key: str
    organization: str | None = None
    project: str | None = None


def find_credentials(session: Session, *, tenant_id: str, provider: str) -> TenantCredentialsRow | None:
    return session.scalar(
        owned(TenantCredentialsRow, tenant_id).where(TenantCredentialsRow.provider == provider)
    )


def save_credentials(
    session: Session, cipher: CredentialsCipher, *, tenant_id: str, provider: str, new: NewCredentials
) -> tuple[TenantCredentialsRow, bool]:
    """Set `tenant_id`'s credentials at `provider` (encrypted; CredentialsKeyMissing without a key):
    the row, and whether it is new. Two sets at once end with one row, the later one's."""
    encrypted = cipher.encrypt(new.api_key)
    now = utcnow()
    row = find_credentials(session, tenant_id=tenant_id, provider=provider)
    created = row is None
    if row is None:
        row = TenantCredentialsRow(
            id=new_id(CREDENTIALS_ID_PREFIX), tenant_id=tenant_id, provider=provider, created_at=now
        )
        try:
            with session.begin_nested():
                _fill(row, encrypted, new, now)
                session.add(row)
        except IntegrityError:  # another request created it first: replace what it set
            found = find_credentials(session, tenant_id=tenant_id, provider=provider)
            assert found is not None
            row, created = found, False
    if not created:
        _fill(row, encrypted, new, now)
    session.flush()
    return row, created


def _fill(row: TenantCredentialsRow, encrypted: str, new: NewCredentials, now: datetime) -> None:
    row.api_key_encrypted = encrypted
    row.api_key_hint = hint_of(new.api_key)
    row.organization = new.organization
    row.project = new.project
    row.updated_at = now


def delete_credentials(session: Session, *, tenant_id: str, provider: str) -> TenantCredentialsRow | None:
    """Remove them; the row as it was (None: there were none)."""
    row = find_credentials(session, tenant_id=tenant_id, provider=provider)
    if row is not None:
        session.delete(row)
        session.flush()
    return row


def decrypted(row: TenantCredentialsRow, cipher: CredentialsCipher) -> ProviderCredentials:
    return ProviderCredentials(
        id=row.id,
        provider=row.provider,
        api_key=cipher.decrypt(row.api_key_encrypted),
        organization=row.organization,
        project=row.project,
    )


def load_credentials(
    session: Session, cipher: CredentialsCipher, *, tenant_id: str, provider: str
) -> ProviderCredentials | None:
    """The tenant's own credentials at `provider`, decrypted; None: it uses the operator's."""
    row = find_credentials(session, tenant_id=tenant_id, provider=provider)
    return decrypted(row, cipher) if row is not None else None


def credentials_by_id(
    session: Session, cipher: CredentialsCipher, credentials_id: str
) -> ProviderCredentials | None:
    """The credentials a job was created with, decrypted; None once they were deleted."""
    row = session.get(TenantCredentialsRow, credentials_id)
    return decrypted(row, cipher) if row is not None else None


def reencrypt_all(session: Session, cipher: CredentialsCipher) -> int:
    """Encrypt every stored key again with the first key of FTM_CREDENTIALS_KEY (a rotation's
    second step; the rows are locked meanwhile); how many. CredentialsUnreadable, changing
    nothing, if one does not decrypt with any configured key."""
    rows = session.scalars(select(TenantCredentialsRow).with_for_update()).all()
    for row in rows:
        row.api_key_encrypted = cipher.rotate(row.api_key_encrypted)
    return len(rows)
