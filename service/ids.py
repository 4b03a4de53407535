"""Object ids: a type prefix and random characters, stable whatever the provider."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """`new_id("file-")` -> `file-4GqX…`; the prefix carries its own separator, as OpenAI's do."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))
