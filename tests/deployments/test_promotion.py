"""Automatic promotion: a deployment following a family of jobs targets each new model of it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.auth import service as auth
from service.db import session_scope
from service.deployments.promotion import promote_new_model
from service.runtime import Runtime
from tests.conftest import bearer
from tests.proxy.fakes import FT_MODEL, add_fine_tuned_model

OLD = FT_MODEL
NEW = "ft:gpt-4o-mini-2024-07-18:acme:support:new001"
NEWER = "ft:gpt-4o-mini-2024-07-18:acme:support:new002"


@pytest.fixture
def headers(tenant_key: str) -> dict[str, str]:
    return bearer(tenant_key)


@pytest.fixture
def models(runtime: Runtime) -> None:
    for model in (OLD, NEW, NEWER):
        add_fine_tuned_model(runtime, model=model)


def deploy(client: TestClient, headers: dict[str, str], name: str = "support-bot", **promotion: Any) -> None:
    body = {"name": name, "targets": [{"model": OLD}], "promotion": promotion}
    answer = client.post("/v1/deployments", headers=headers, json=body)
    assert answer.status_code == 200, answer.text


def job_succeeded(
    runtime: Runtime, model: str, *, suffix: str | None = "support", metadata: dict[str, str] | None = None
) -> list[str]:
    with session_scope(runtime.sessions) as session:
        tenant = auth.get_or_create_tenant(session, "acme")
        return promote_new_model(
            session, tenant_id=tenant.id, model=model, job_id="ftjob-1", suffix=suffix, metadata=metadata
        )


def current(client: TestClient, headers: dict[str, str], name: str = "support-bot") -> dict[str, Any]:
    result: dict[str, Any] = client.get(f"/v1/deployments/{name}", headers=headers).json()
    return result


@pytest.mark.usefixtures("models")
def test_a_job_of_the_followed_suffix_becomes_the_target_straight_away(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    # Given a deployment following the jobs of suffix `support`
    deploy(client, headers, suffix="support")

    # When such a job succeeds
    promoted = job_succeeded(runtime, NEW)

    # Then a new version targets its model alone, made by the job
    assert promoted == ["support-bot"]
    now = current(client, headers)
    assert (now["version"], now["targets"]) == (2, [{"model": NEW, "weight": 100}])
    [latest] = client.get("/v1/deployments/support-bot/versions?limit=1", headers=headers).json()["data"]
    assert (latest["reason"], latest["created_by"]) == ("promoted", "ftjob-1")


@pytest.mark.usefixtures("models")
def test_a_canary_joins_the_targets_and_the_next_canary_replaces_it(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    # Given a deployment promoting by metadata, as a canary at weight 10
    deploy(client, headers, metadata={"team": "support"}, canary_weight=10)

    # When two jobs of that family succeed one after the other
    job_succeeded(runtime, NEW, suffix=None, metadata={"team": "support", "run": "1"})
    after_first = current(client, headers)["targets"]
    job_succeeded(runtime, NEWER, suffix=None, metadata={"team": "support", "run": "2"})

    # Then the first joined beside the old target, and the second took the first's place
    assert after_first == [{"model": OLD, "weight": 1}, {"model": NEW, "weight": 10}]
    assert current(client, headers)["targets"] == [
        {"model": OLD, "weight": 1},
        {"model": NEWER, "weight": 10},
    ]


@pytest.mark.usefixtures("models")
@pytest.mark.parametrize(
    ("suffix", "metadata"),
    [("other", {"team": "support"}), ("support", {"team": "billing"}), ("support", None)],
)
def test_a_job_outside_the_family_changes_nothing(
    client: TestClient,
    runtime: Runtime,
    headers: dict[str, str],
    suffix: str,
    metadata: dict[str, str] | None,
) -> None:
    # Given a deployment following suffix `support` with metadata team=support
    deploy(client, headers, suffix="support", metadata={"team": "support"})

    # When a job that misses one of them succeeds
    promoted = job_succeeded(runtime, NEW, suffix=suffix, metadata=metadata)

    # Then the deployment stays at version 1
    assert promoted == []
    assert current(client, headers)["version"] == 1


@pytest.mark.usefixtures("models")
def test_a_deployment_without_promotion_and_a_model_already_targeted_are_left_alone(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    answer = client.post(
        "/v1/deployments", headers=headers, json={"name": "manual", "targets": [{"model": OLD}]}
    )
    assert answer.status_code == 200
    deploy(client, headers, suffix="support")

    assert job_succeeded(runtime, OLD) == []
    assert (current(client, headers, "manual")["version"], current(client, headers)["version"]) == (1, 1)


def test_a_promotion_must_follow_something(client: TestClient, headers: dict[str, str]) -> None:
    answer = client.post(
        "/v1/deployments",
        headers=headers,
        json={
            "name": "bot",
            "targets": [{"model": "gpt-4o-mini-2024-07-18"}],
            "promotion": {"canary_weight": 5},
        },
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "promotion"
