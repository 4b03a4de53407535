"""Tasks of the webhooks feature."""

from __future__ import annotations
