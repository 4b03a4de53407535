"""Object ids in OpenAI's style: a prefix and random letters and digits."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """A random id, e.g. ``new_id("file-")`` -> ``file-3fQ…``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))
