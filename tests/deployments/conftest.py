"""The deployments tests use the proxy tests' fake provider and caller."""

from __future__ import annotations

from tests.proxy.conftest import caller, upstream

__all__ = ["caller", "upstream"]
