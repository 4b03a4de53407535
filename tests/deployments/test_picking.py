"""Choosing a deployment's arm: by weight, or by a sticky key, and then its fallbacks."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from service.deployments.routing import Arm, DeploymentRoute, StickyRule, pick, sticky_draw
from service.models.service import ModelRoute


def route(model: str) -> ModelRoute:
    return ModelRoute(model, "local", model, "acme", None)


def deployment(
    *weights: int, sticky: StickyRule | None = None, fallbacks: tuple[str, ...] = ()
) -> DeploymentRoute:
    arms = tuple(Arm(route(f"m{index}"), weight) for index, weight in enumerate(weights))
    return DeploymentRoute("support-bot", 3, arms, tuple(route(m) for m in fallbacks), sticky)


@pytest.mark.parametrize("weights", [(90, 10), (50, 30, 20), (1, 1, 1, 1), (995, 5)])
def test_10000_weighted_decisions_land_within_two_points_of_the_weights(weights: tuple[int, ...]) -> None:
    # Given a deployment with these weights and a seeded source of draws
    chosen = deployment(*weights)
    draws = random.Random(9)

    # When 10,000 requests are routed
    counts = Counter(chosen.attempts({}, {}, draw=draws.random)[0].model for _ in range(10_000))

    # Then each arm's share is its weight's share, within two percentage points
    total = sum(weights)
    for index, weight in enumerate(weights):
        assert abs(counts[f"m{index}"] / 10_000 - weight / total) < 0.02, counts


def test_an_arm_of_weight_zero_is_never_chosen() -> None:
    arms = [Arm(route("idle"), 0), Arm(route("busy"), 1), Arm(route("last-idle"), 0)]

    assert {pick(arms, draw).route.model for draw in (0.0, 0.25, 0.5, 0.999999, 1.0)} == {"busy"}


def test_a_sticky_user_always_gets_the_same_arm() -> None:
    # Given a 50/50 deployment sticky by `user`, and draws that would otherwise vary
    chosen = deployment(50, 50, sticky=StickyRule("user", "X-FTM-Sticky-Key"))
    draws = random.Random(1)

    # When each of 200 users sends 50 requests
    arms_by_user = {
        user: {chosen.attempts({"user": user}, {}, draw=draws.random)[0].model for _ in range(50)}
        for user in (f"user-{n}" for n in range(200))
    }

    # Then every user stayed on one arm, and the users are spread over both
    assert all(len(arms) == 1 for arms in arms_by_user.values())
    spread = Counter(next(iter(arms)) for arms in arms_by_user.values())
    assert 70 < spread["m0"] < 130


def test_a_sticky_header_keys_the_choice_and_a_missing_key_draws() -> None:
    # Given a deployment sticky by a header
    chosen = deployment(50, 50, sticky=StickyRule("header", "X-FTM-Sticky-Key"))

    # When requests carry the header (lower-cased, as ASGI gives it) or not
    low, high = (lambda: 0.1), (lambda: 0.9)
    keyed = {chosen.attempts({}, {"x-ftm-sticky-key": "tenant-7"}, draw=d)[0].model for d in (low, high)}
    unkeyed = {chosen.attempts({}, {}, draw=d)[0].model for d in (low, high)}

    # Then the key decides alone, and without it the draw does
    assert len(keyed) == 1
    assert unkeyed == {"m0", "m1"}


def test_the_sticky_draw_is_a_fixed_function_of_deployment_and_key() -> None:
    # The same in every process and release (SHA-256, not Python's salted hash): a pinned value
    assert sticky_draw("support-bot", "alice") == pytest.approx(0.4924155975208974)
    assert sticky_draw("support-bot", "alice") != sticky_draw("billing-bot", "alice")


def test_fallbacks_follow_the_chosen_arm_in_order_without_repeating_it() -> None:
    chosen = deployment(1, 0, fallbacks=("m0", "base", "m1"))

    assert [r.model for r in chosen.attempts({}, {}, draw=lambda: 0.5)] == ["m0", "base", "m1"]
