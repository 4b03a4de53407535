"""Tasks of the jobs feature."""

from __future__ import annotations
