"""File names: kept for display only, never used as a path, and sent back in a header any client
can read.

`clean_filename` is applied once, when a file is created: it keeps the last path component
(splitting on both `/` and `\\`), removes control and invisible format characters, and bounds the
length, keeping the extension. `content_disposition` builds the download header for any name
(RFC 6266 with RFC 5987's `filename*` for the Unicode name and a plain ASCII fallback).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_FILENAME_CHARS = 255
MAX_EXTENSION_CHARS = 16  # a longer "extension" is part of the name, not a type
DEFAULT_FILENAME = "upload.jsonl"

# Joiners shape Persian, Indic scripts and emoji sequences; every other Cf character (bidi
# overrides, zero-width spaces, BOMs) only hides or reorders what a reader sees.
_KEPT_FORMAT_CHARS = frozenset({"\u200c", "\u200d"})
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_PATH_SEPARATORS = re.compile(r"[/\\]")


def _visible(char: str) -> bool:
    return char in _KEPT_FORMAT_CHARS or unicodedata.category(char) not in _REMOVED_CATEGORIES


def _bounded(name: str) -> str:
    if len(name) <= MAX_FILENAME_CHARS:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) + 1 > MAX_EXTENSION_CHARS:
        return name[:MAX_FILENAME_CHARS].rstrip()
    return stem[: MAX_FILENAME_CHARS - len(extension) - 1].rstrip() + dot + extension


def clean_filename(raw: str | None, *, default: str = DEFAULT_FILENAME) -> str:
    """The name to keep for an uploaded file: its last path component without control or format
    characters, at most MAX_FILENAME_CHARS characters (the extension kept), or `default` when
    nothing usable remains."""
    visible = "".join(char for char in unicodedata.normalize("NFC", raw or "") if _visible(char))
    name = _PATH_SEPARATORS.split(visible)[-1].strip()
    if not name.strip("."):
        return default
    return _bounded(name)


def _ascii_fallback(name: str) -> str:
    # Accents fall off ("Résumé" -> "Resume"); anything else outside printable ASCII, and the
    # quote, backslash and percent sign that old clients misread (RFC 6266 appendix D), become "_".
    kept: list[str] = []
    for char in unicodedata.normalize("NFKD", name):
        if unicodedata.category(char) == "Mn":
            continue
        kept.append(char if " " <= char <= "~" and char not in '"\\%' else "_")
    return "".join(kept)


def content_disposition(name: str) -> str:
    """A `Content-Disposition: attachment` value, pure ASCII, valid for any name."""
    return f"attachment; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
