"""Tasks of the files feature."""

from __future__ import annotations
