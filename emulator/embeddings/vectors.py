"""Deterministic embeddings: a hashed bag of words, L2-normalised.

Each lower-cased word of the input adds +1 or -1 (by its hash) to one coordinate chosen by its
hash, so texts sharing words point the same way and the same text always gets the same vector,
in every process. A shorter ``dimensions`` keeps the first coordinates and renormalises, as
OpenAI's ``text-embedding-3`` models shorten theirs.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from collections.abc import Sequence

_WORD = re.compile(r"\w+")


def embed(text: str, dimensions: int, full: int) -> list[float]:
    """The unit vector of ``text``: computed at ``full`` size, cut to ``dimensions``. Text with no
    words is the zero vector (there is nothing to point at)."""
    vector = [0.0] * full
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % full
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    vector = vector[:dimensions]
    norm = math.sqrt(sum(value * value for value in vector))
    return [value / norm for value in vector] if norm else vector


def as_base64(vector: Sequence[float]) -> str:
    """OpenAI's ``encoding_format: base64``: the little-endian float32 array, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
