"""Standard Webhooks signatures, exactly as `openai.OpenAI().webhooks.unwrap()` verifies them.

Each delivery carries three headers:

- `webhook-id`: the event id (`evt_…`), the same on every retry: the receiver's idempotency key;
- `webhook-timestamp`: unix seconds of this attempt;
- `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` entries, one per active secret,
  of the bytes `{id}.{timestamp}.{body}`, keyed with the base64-decoded part of `whsec_<base64>`.

The body is signed and sent as the same bytes; receivers must verify before parsing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def generate_secret() -> str:
    """A new endpoint secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_hint(secret: str) -> str:
    """What may be shown of a secret after creation: `whsec_…` and its last four characters."""
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secrets start with 'whsec_'")
    return base64.b64decode(secret[len(SECRET_PREFIX) :])


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature entry."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(*, msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret given (newest first)."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign a webhook")
    signatures = " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}
