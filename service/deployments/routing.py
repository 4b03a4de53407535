"""How a deployment routes a request: pick an arm by weight (or by a sticky key), then the
fallbacks in order. Pure apart from `load_deployment_route`, which reads one deployment's current
version for the proxy's route cache.

A sticky key is hashed with SHA-256 (not Python's `hash`, which is salted per process), so every
API process and every restart sends one key to the same arm for as long as the weights stay.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.deployments.models import DeploymentRow
from service.deployments.service import current_version
from service.models.service import Catalog, ModelRoute, find_route
from service.tenancy import owned

_SCALE = float(1 << 64)


@dataclass(frozen=True)
class Arm:
    route: ModelRoute
    weight: int


@dataclass(frozen=True)
class StickyRule:
    source: str  # "user" (the body's `user`) or "header"
    header: str

    def key(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
        value = body.get("user") if self.source == "user" else headers.get(self.header.lower())
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class DeploymentRoute:
    """A deployment's current version, resolved to routes: what the route cache keeps for its name."""

    name: str
    version: int
    arms: tuple[Arm, ...]
    fallbacks: tuple[ModelRoute, ...]
    sticky: StickyRule | None

    def attempts(
        self,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        draw: Callable[[], float] = random.random,
    ) -> list[ModelRoute]:
        """The routes to try in order: the chosen arm, then each fallback not tried already."""
        key = self.sticky.key(body, headers) if self.sticky is not None else None
        chosen = pick(self.arms, sticky_draw(self.name, key) if key is not None else draw())
        tried = [chosen.route]
        for fallback in self.fallbacks:
            if all(fallback.model != route.model for route in tried):
                tried.append(fallback)
        return tried


def pick(arms: Sequence[Arm], draw: float) -> Arm:
    """The arm whose share of the total weight holds `draw` (in [0, 1)); arms of weight 0 never."""
    total = sum(arm.weight for arm in arms)
    point = draw * total
    reached = 0
    for arm in arms:
        reached += arm.weight
        if arm.weight and point < reached:
            return arm
    return next(arm for arm in reversed(arms) if arm.weight)  # draw rounding up to 1.0


def sticky_draw(deployment: str, key: str) -> float:
    """A draw in [0, 1) fixed by the deployment and the key, the same in every process."""
    digest = hashlib.sha256(f"{deployment}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def load_deployment_route(
    session: Session, *, tenant_id: str, tenant_name: str, name: str, catalog: Catalog
) -> DeploymentRoute | None:
    """`name`'s current version as routes, or None if the tenant has no such deployment (or none of
    its targets can be routed any more)."""
    row = session.scalar(owned(DeploymentRow, tenant_id).where(DeploymentRow.name == name))
    if row is None:
        return None
    version = current_version(session, row)

    def route(model: str) -> ModelRoute | None:
        return find_route(
            session,
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            model=model,
            catalog=catalog,
        )

    arms = []
    for target in version.targets:
        found = route(target["model"])
        if found is not None and target["weight"] > 0:
            arms.append(Arm(found, target["weight"]))
    fallbacks = tuple(found for model in version.fallbacks if (found := route(model)) is not None)
    if not arms:
        return None
    sticky = StickyRule(version.sticky["source"], version.sticky["header"]) if version.sticky else None
    return DeploymentRoute(row.name, row.version, tuple(arms), fallbacks, sticky)
