"""API key material: generation, the visible prefix, hashing and constant-time comparison.

A key is `ftm_` + 43 url-safe characters (256 random bits). Only its SHA-256 is stored, beside a
visible prefix (the first 12 characters) used to find candidate rows. A slow KDF would add tens of
milliseconds to every request for no gain on keys of this entropy.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

KEY_PREFIX = "ftm_"
VISIBLE_PREFIX_LENGTH = 12
MIN_KEY_LENGTH = 20


class Scope(StrEnum):
    """What a key may do.

    `platform` administers the platform: tenants, and the keys of every tenant. `admin` administers
    its own tenant (its keys) and implies every feature scope within it. Feature scopes name the
    API surface they open. `platform` is never implied: a key has it only when granted it.
    """

    PLATFORM = "platform"
    ADMIN = "admin"
    FILES = "files"
    FINE_TUNING = "fine_tuning"
    WEBHOOKS = "webhooks"
    INFERENCE = "inference"
    DEPLOYMENTS = "deployments"


ALL_SCOPES = frozenset(Scope)
FEATURE_SCOPES = frozenset(ALL_SCOPES - {Scope.PLATFORM, Scope.ADMIN})
DEFAULT_SCOPES = FEATURE_SCOPES


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def visible_prefix(key: str) -> str:
    return key[:VISIBLE_PREFIX_LENGTH]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)
