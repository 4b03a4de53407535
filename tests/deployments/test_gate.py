"""The gate's rule, over every combination of per-criterion verdicts, and how the API takes it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.deployments.gate import passes
from service.deployments.schemas import Gate
from tests.conftest import bearer

BETTER = Gate(require="better")
NOT_WORSE = Gate(require="not_worse")


@pytest.mark.parametrize(
    ("verdicts", "better", "not_worse"),
    [
        (["better"], True, True),
        (["better", "no_difference"], True, True),
        (["no_difference", "no_difference"], False, True),
        (["better", "worse"], False, False),
        (["worse"], False, False),
        (["no_difference", "worse"], False, False),
        ([], False, False),  # no criterion: no evidence
    ],
)
def test_better_needs_one_criterion_better_and_none_worse_and_not_worse_needs_none_worse(
    verdicts: list[str], better: bool, not_worse: bool
) -> None:
    assert (passes(BETTER, verdicts), passes(NOT_WORSE, verdicts)) == (better, not_worse)


def test_a_gate_defaults_to_better_at_five_percent() -> None:
    assert Gate() == Gate(require="better", alpha=0.05)


@pytest.mark.parametrize("gate", [{"require": "best"}, {"alpha": 0.5}, {"alpha": 0}, {"min_items": 3}])
def test_a_gate_that_is_not_a_stated_rule_is_a_400(client: TestClient, tenant_key: str, gate: object) -> None:
    response = client.post(
        "/v1/deployments",
        headers=bearer(tenant_key),
        json={
            "name": "bot",
            "targets": [{"model": "gpt-4o-mini-2024-07-18"}],
            "promotion": {"suffix": "s", "gate": gate},
        },
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("promotion.gate")
