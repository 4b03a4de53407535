"""`/v1/deployments`: create, list, retrieve, change (new versions), roll back, delete."""

from __future__ import annotations

import os
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from service.auth.keys import Scope
from service.clock import utcnow
from service.db import session_scope
from service.deployments.models import DeploymentRow, DeploymentVersionRow
from service.runtime import Runtime
from tests.conftest import bearer, make_key
from tests.proxy.fakes import FT_MODEL, FakeUpstream, add_fine_tuned_model

BASE = "gpt-4o-mini-2024-07-18"
CANARY = "ft:gpt-4o-mini-2024-07-18:acme:support:def456"


@pytest.fixture
def headers(tenant_key: str) -> dict[str, str]:
    return bearer(tenant_key)


@pytest.fixture
def models(runtime: Runtime) -> None:
    add_fine_tuned_model(runtime)
    add_fine_tuned_model(runtime, model=CANARY)


def create(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = {"name": "support-bot", "targets": [{"model": FT_MODEL, "weight": 100}], **overrides}
    answer = client.post("/v1/deployments", headers=headers, json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.mark.usefixtures("models")
def test_creating_a_deployment_makes_version_1_with_its_targets(
    client: TestClient, headers: dict[str, str]
) -> None:
    # When a deployment is created with two arms, a fallback and sticky routing
    created = create(
        client,
        headers,
        targets=[{"model": FT_MODEL, "weight": 90}, {"model": CANARY, "weight": 10}],
        fallbacks=[BASE],
        sticky={"source": "user"},
    )

    # Then it is version 1 with what was asked, and retrieving it says the same
    assert created["object"] == "deployment"
    assert created["id"].startswith("dep_")
    assert (created["name"], created["version"]) == ("support-bot", 1)
    assert created["targets"] == [{"model": FT_MODEL, "weight": 90}, {"model": CANARY, "weight": 10}]
    assert created["fallbacks"] == [BASE]
    assert created["sticky"] == {"source": "user", "header": "X-FTM-Sticky-Key"}
    assert client.get("/v1/deployments/support-bot", headers=headers).json() == created


@pytest.mark.usefixtures("models")
def test_a_name_is_unique_within_a_tenant_but_not_across_tenants(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    # Given a deployment of tenant acme
    create(client, headers)

    # When acme creates another of that name, and a base-model deployment of that name is made elsewhere
    again = client.post(
        "/v1/deployments", headers=headers, json={"name": "support-bot", "targets": [{"model": BASE}]}
    )
    elsewhere = client.post(
        "/v1/deployments",
        headers=bearer(make_key(runtime, "globex")),
        json={"name": "support-bot", "targets": [{"model": BASE}]},
    )

    # Then the first is a 409 and the second is created
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "deployment_exists"
    assert elsewhere.status_code == 200


@pytest.mark.parametrize(
    "name", ["ft:gpt-4o-mini-2024-07-18:acme::x", BASE, "has space", "-leading-dash", "a/b", "x" * 65]
)
def test_a_name_that_looks_like_a_model_or_holds_odd_characters_is_refused(
    client: TestClient, headers: dict[str, str], name: str
) -> None:
    # When a deployment is given such a name
    answer = client.post(
        "/v1/deployments", headers=headers, json={"name": name, "targets": [{"model": BASE}]}
    )

    # Then it is a 400 naming `name`
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "name"


@pytest.mark.parametrize(
    ("targets", "fallbacks", "param"),
    [
        ([{"model": "ft:gpt-4o-mini-2024-07-18:globex:x:1"}], [], "targets[0].model"),
        ([{"model": BASE}], ["no-such-model"], "fallbacks[0]"),
        ([{"model": BASE}, {"model": BASE}], [], "targets[1].model"),
        ([{"model": BASE, "weight": 0}], [], "targets"),
    ],
)
def test_targets_must_be_distinct_callable_models_with_some_weight(
    client: TestClient,
    runtime: Runtime,
    headers: dict[str, str],
    targets: list[dict[str, Any]],
    fallbacks: list[str],
    param: str,
) -> None:
    # Given a model of another tenant
    add_fine_tuned_model(runtime, tenant="globex", model="ft:gpt-4o-mini-2024-07-18:globex:x:1")

    # When a deployment names a model the caller may not call, twice, or has no weight
    answer = client.post(
        "/v1/deployments",
        headers=headers,
        json={"name": "bot", "targets": targets, "fallbacks": fallbacks},
    )

    # Then it is a 400 naming the field, and nothing was created
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert client.get("/v1/deployments", headers=headers).json()["data"] == []


@pytest.mark.usefixtures("models")
def test_every_change_is_a_new_version_and_the_history_keeps_each_one(
    client: TestClient, headers: dict[str, str]
) -> None:
    # Given a deployment
    create(client, headers)

    # When it gets a canary, then its fallbacks change
    client.post(
        "/v1/deployments/support-bot",
        headers=headers,
        json={"targets": [{"model": FT_MODEL, "weight": 95}, {"model": CANARY, "weight": 5}]},
    )
    current = client.post("/v1/deployments/support-bot", headers=headers, json={"fallbacks": [BASE]}).json()

    # Then it is version 3 (the canary kept), and the history lists 3, 2, 1 with who made each
    assert current["version"] == 3
    assert current["targets"] == [{"model": FT_MODEL, "weight": 95}, {"model": CANARY, "weight": 5}]
    versions = client.get("/v1/deployments/support-bot/versions", headers=headers).json()
    assert [v["version"] for v in versions["data"]] == [3, 2, 1]
    assert [v["reason"] for v in versions["data"]] == ["updated", "updated", "created"]
    assert versions["data"][2]["targets"] == [{"model": FT_MODEL, "weight": 100}]
    assert all(v["created_by"].startswith("key_") for v in versions["data"])


@pytest.mark.usefixtures("models")
def test_rollback_makes_a_new_version_equal_to_the_earlier_one(
    client: TestClient, headers: dict[str, str]
) -> None:
    # Given a deployment moved from FT_MODEL to CANARY
    create(client, headers)
    client.post("/v1/deployments/support-bot", headers=headers, json={"targets": [{"model": CANARY}]})

    # When it is rolled back to version 1
    rolled = client.post("/v1/deployments/support-bot/rollback", headers=headers, json={"version": 1})

    # Then version 3 is current with version 1's targets, and says where it came from
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["version"], rolled.json()["targets"]) == (3, [{"model": FT_MODEL, "weight": 100}])
    [latest] = client.get("/v1/deployments/support-bot/versions?limit=1", headers=headers).json()["data"]
    assert (latest["reason"], latest["rolled_back_to"]) == ("rolled_back", 1)


@pytest.mark.usefixtures("models")
def test_rollback_to_an_unknown_version_is_a_400_naming_version(
    client: TestClient, headers: dict[str, str]
) -> None:
    create(client, headers)

    answer = client.post("/v1/deployments/support-bot/rollback", headers=headers, json={"version": 7})

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "version"


@pytest.mark.usefixtures("models")
def test_deleting_a_deployment_removes_it_and_its_history(
    client: TestClient, headers: dict[str, str]
) -> None:
    # Given a deployment
    created = create(client, headers)

    # When it is deleted
    deleted = client.delete("/v1/deployments/support-bot", headers=headers)

    # Then it is gone, and its name is free again
    assert deleted.json() == {
        "id": created["id"],
        "object": "deployment",
        "name": "support-bot",
        "deleted": True,
    }
    assert client.get("/v1/deployments/support-bot", headers=headers).status_code == 404
    assert client.get("/v1/deployments/support-bot/versions", headers=headers).status_code == 404
    assert create(client, headers)["version"] == 1


@pytest.mark.usefixtures("models")
def test_the_list_pages_newest_first(client: TestClient, headers: dict[str, str]) -> None:
    for name in ("one", "two", "three"):
        create(client, headers, name=name)

    first = client.get("/v1/deployments?limit=2", headers=headers).json()
    rest = client.get(f"/v1/deployments?limit=2&after={first['last_id']}", headers=headers).json()

    assert [d["name"] for d in first["data"] + rest["data"]] == ["three", "two", "one"]
    assert (first["has_more"], rest["has_more"]) == (True, False)


def test_the_routes_need_the_deployments_scope(client: TestClient, runtime: Runtime) -> None:
    key = make_key(runtime, "acme", frozenset({Scope.INFERENCE}))

    answer = client.get("/v1/deployments", headers=bearer(key))

    assert answer.status_code == 403


@pytest.mark.usefixtures("models")
def test_the_sdk_lists_deployments_beside_models(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI
) -> None:
    # Given a deployment
    create(client, headers)

    # When the SDK lists the models, and retrieves the deployment's name
    listed = {model.id: model for model in caller.models.list()}
    retrieved = caller.models.retrieve("support-bot")

    # Then the deployment is there, owned by the tenant and marked with its version
    assert list(listed)[:3] == [CANARY, FT_MODEL, "support-bot"]
    assert listed["support-bot"].owned_by == "acme"
    assert (listed["support-bot"].model_extra or {}).get("deployment_version") == 1
    assert (retrieved.id, retrieved.object, retrieved.owned_by) == ("support-bot", "model", "acme")
    assert "deployment_version" not in (listed[FT_MODEL].model_extra or {})


@pytest.mark.usefixtures("models")
def test_deleting_a_model_a_deployment_uses_is_a_409_naming_it(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI, upstream: FakeUpstream
) -> None:
    # Given deployments that route to FT_MODEL (as a target) and CANARY (as a fallback)
    create(client, headers)
    create(client, headers, name="billing-bot", targets=[{"model": BASE}], fallbacks=[CANARY])

    # When either model is deleted
    with pytest.raises(openai.ConflictError) as target:
        caller.models.delete(FT_MODEL)
    with pytest.raises(openai.ConflictError) as fallback:
        caller.models.delete(CANARY)

    # Then both are refused naming the deployment, and the provider was never asked
    assert target.value.code == "model_in_use"
    assert "'support-bot'" in target.value.message
    assert "'billing-bot'" in fallback.value.message
    assert upstream.deleted == set()


@pytest.mark.usefixtures("models")
def test_a_model_no_current_version_uses_any_more_can_be_deleted(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI
) -> None:
    # Given a deployment that used CANARY in version 1 only
    create(client, headers, targets=[{"model": CANARY}])
    client.post("/v1/deployments/support-bot", headers=headers, json={"targets": [{"model": FT_MODEL}]})

    # When CANARY is deleted
    deleted = caller.models.delete(CANARY)

    # Then it is, and rolling back to version 1 is refused since its model is gone
    assert deleted.deleted is True
    answer = client.post("/v1/deployments/support-bot/rollback", headers=headers, json={"version": 1})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "model_not_found"


@pytest.mark.usefixtures("models")
@pytest.mark.skipif(
    "postgresql" in os.environ.get("FTM_TEST_DATABASE_URL", ""),
    reason="PostgreSQL takes turns under its row lock; the race only exists without one (SQLite)",
)
def test_a_change_that_loses_the_race_for_its_version_number_is_a_409(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    created = create(client, headers)

    raced: list[bool] = []

    def another_change_lands_first(session: Session, *_: object) -> None:
        if not raced and any(isinstance(row, DeploymentVersionRow) for row in session.new):
            raced.append(True)
            with runtime.engine.begin() as connection:
                connection.execute(
                    insert(DeploymentVersionRow).values(
                        id="depver_raced",
                        tenant_id=created_tenant(runtime),
                        deployment_id=created["id"],
                        version=2,
                        targets=[{"model": BASE, "weight": 1}],
                        fallbacks=[],
                        reason="update",
                        created_at=utcnow(),
                    )
                )

    event.listen(runtime.sessions, "before_flush", another_change_lands_first)
    answer = client.post("/v1/deployments/support-bot", headers=headers, json={"fallbacks": [BASE]})

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "deployment_changed"


def created_tenant(runtime: Runtime) -> str:
    with session_scope(runtime.sessions) as session:
        return session.scalars(select(DeploymentRow.tenant_id)).one()
