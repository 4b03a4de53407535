"""A tenant's own credentials at a provider, and how they are kept encrypted at rest.

A tenant may give its own API key for a provider (and, for OpenAI, its organization and project
ids); its jobs, file copies, evaluation runs and proxied requests on that provider then use them
instead of the operator's key (`service.providers.credentials_store` keeps them, the registry
makes clients with them).

The key is encrypted with Fernet (AES-128-CBC with an HMAC-SHA256, from `cryptography`) under the
operator's `FTM_CREDENTIALS_KEY`: one or more comma-separated Fernet keys, the first encrypts and
any of them decrypts (`MultiFernet`), so a key is rotated by putting a new one first, re-encrypting
the stored rows with it (`ftm db rotate-credentials`), then dropping the old one. Without a key configured nothing is stored: a
set is refused (503 `credentials_key_missing`), never kept in plaintext.

Only `ProviderCredentials.hint` (the last 4 characters) ever leaves this module in an answer or
a log line; `repr` hides the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from service.errors import DependencyUnavailable, ServiceError

HINT_CHARS = 4
ORGANIZATION_HEADER = "OpenAI-Organization"
PROJECT_HEADER = "OpenAI-Project"


def hint_of(api_key: str) -> str:
    """What may be shown of a key: its last 4 characters (OpenAI's dashboards show as much)."""
    return api_key[-HINT_CHARS:] if len(api_key) > 2 * HINT_CHARS else ""


@dataclass(frozen=True)
class ProviderCredentials:
    """A tenant's credentials at one provider, decrypted (in memory only)."""

    id: str  # the stored row's: jobs remember it (`JobRow.credentials_id`)
    provider: str
    api_key: str = field(repr=False)
    organization: str | None = None
    project: str | None = None

    @property
    def hint(self) -> str:
        return hint_of(self.api_key)

    def headers(self) -> dict[str, str]:
        """The request headers that carry them: the bearer key, and OpenAI's organization and
        project headers when they are set (never the operator's)."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if self.organization:
            headers[ORGANIZATION_HEADER] = self.organization
        if self.project:
            headers[PROJECT_HEADER] = self.project
        return headers


class CredentialsKeyMissing(DependencyUnavailable):
    """No `FTM_CREDENTIALS_KEY` is configured, so credentials can be neither stored nor read."""

    code = "credentials_key_missing"


class CredentialsUnreadable(ServiceError):
    """A stored key does not decrypt with any configured key (the key that wrote it was dropped)."""

    status_code = 500
    type = "server_error"
    code = "credentials_unreadable"


def parse_keys(raw: str) -> list[bytes]:
    """The Fernet keys of `FTM_CREDENTIALS_KEY` (comma-separated), each checked; ValueError names
    the position of a malformed one (never its value)."""
    keys = [part.strip().encode() for part in raw.split(",") if part.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"FTM_CREDENTIALS_KEY: key {position} is not a Fernet key (32 url-safe base64-encoded "
                "bytes, e.g. from `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None
    return keys


class CredentialsCipher:
    """Encrypts with the first configured key, decrypts with any (`MultiFernet`)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None

    @classmethod
    def from_setting(cls, raw: str | None) -> CredentialsCipher:
        return cls(parse_keys(raw) if raw else [])

    @property
    def configured(self) -> bool:
        return self._fernet is not None

    def _require(self) -> MultiFernet:
        if self._fernet is None:
            raise CredentialsKeyMissing(
                "Provider credentials cannot be stored: the service has no encryption key. The "
                "operator sets FTM_CREDENTIALS_KEY (a Fernet key; see the README)."
            )
        return self._fernet

    def encrypt(self, secret: str) -> str:
        return self._require().encrypt(secret.encode()).decode("ascii")

    def rotate(self, token: str) -> str:
        """`token` encrypted again with the first key (it may have been written with any)."""
        try:
            return self._require().rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise CredentialsUnreadable(
                "Stored provider credentials cannot be decrypted with any key of FTM_CREDENTIALS_KEY."
            ) from None

    def decrypt(self, token: str) -> str:
        try:
            return self._require().decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise CredentialsUnreadable(
                "Stored provider credentials cannot be decrypted with any key of FTM_CREDENTIALS_KEY "
                "(was the key that encrypted them removed?)."
            ) from None
