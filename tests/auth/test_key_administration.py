"""Who administers what: tenant admins their own tenant's keys, platform admins every tenant."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.runtime import Runtime
from tests.conftest import bearer, make_key

TENANT_ADMIN = frozenset({"admin"})
PLATFORM_ONLY = frozenset({"platform"})


@pytest.fixture
def acme_admin(runtime: Runtime) -> str:
    return make_key(runtime, "acme", TENANT_ADMIN)


@pytest.fixture
def beta_key_id(client: TestClient, runtime: Runtime) -> str:
    key = make_key(runtime, "beta")
    key_id: str = client.get("/v1/me", headers=bearer(key)).json()["key_id"]
    return key_id


def key_ids(client: TestClient, key: str, **params: str) -> list[str]:
    response = client.get("/v1/api_keys", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


def test_a_tenant_admin_lists_the_keys_of_its_own_tenant_only(
    client: TestClient, acme_admin: str, beta_key_id: str
) -> None:
    own_id = client.get("/v1/me", headers=bearer(acme_admin)).json()["key_id"]

    listed = key_ids(client, acme_admin)

    assert listed == [own_id]


def test_a_tenant_admin_naming_another_tenant_gets_the_404_of_a_missing_tenant(
    client: TestClient, acme_admin: str, beta_key_id: str
) -> None:
    other = client.get("/v1/api_keys", params={"tenant": "beta"}, headers=bearer(acme_admin))
    missing = client.get("/v1/api_keys", params={"tenant": "gamma"}, headers=bearer(acme_admin))

    assert (other.status_code, missing.status_code) == (404, 404)
    assert other.json()["error"] == {**missing.json()["error"], "message": "No tenant named 'beta'."}
    assert other.json()["error"]["code"] == "tenant_not_found"


def test_a_tenant_admin_revoking_another_tenants_key_gets_a_404_and_the_key_stays_active(
    client: TestClient, acme_admin: str, beta_key_id: str, admin_key: str
) -> None:
    response = client.delete(f"/v1/api_keys/{beta_key_id}", headers=bearer(acme_admin))

    beta_keys = client.get("/v1/api_keys", params={"tenant": "beta"}, headers=bearer(admin_key)).json()
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "api_key_not_found"
    assert beta_keys["data"][0]["revoked_at"] is None


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("POST", {"name": "new-team"})], ids=["list", "create"]
)
def test_a_tenant_admin_gets_a_403_on_the_tenants_routes(
    client: TestClient, acme_admin: str, method: str, body: dict[str, str] | None
) -> None:
    response = client.request(method, "/v1/tenants", json=body, headers=bearer(acme_admin))

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


def test_a_tenant_admin_creates_and_revokes_keys_of_its_own_tenant(
    client: TestClient, acme_admin: str
) -> None:
    created = client.post("/v1/api_keys", json={"scopes": ["files", "admin"]}, headers=bearer(acme_admin))
    new = created.json()

    revoked = client.delete(f"/v1/api_keys/{new['id']}", headers=bearer(acme_admin))

    assert created.status_code == 200, created.text
    assert (new["tenant_id"], new["scopes"]) == (
        client.get("/v1/me", headers=bearer(acme_admin)).json()["tenant_id"],
        ["admin", "files"],
    )
    assert revoked.status_code == 200
    assert client.get("/v1/me", headers=bearer(new["key"])).status_code == 401


def test_a_tenant_admin_cannot_create_a_key_for_another_tenant(
    client: TestClient, acme_admin: str, beta_key_id: str, admin_key: str
) -> None:
    response = client.post("/v1/api_keys", json={"tenant": "beta"}, headers=bearer(acme_admin))

    assert response.status_code == 404
    assert response.json()["error"]["param"] == "tenant"
    assert key_ids(client, admin_key, tenant="beta") == [beta_key_id]


def test_a_tenant_admin_cannot_create_a_platform_key(client: TestClient, acme_admin: str) -> None:
    before = key_ids(client, acme_admin)

    response = client.post("/v1/api_keys", json={"scopes": ["platform"]}, headers=bearer(acme_admin))

    assert response.status_code == 403
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == (
        "scopes",
        "scope_not_grantable",
    )
    assert key_ids(client, acme_admin) == before


def test_a_tenant_admin_of_default_cannot_revoke_a_platform_key(
    client: TestClient, runtime: Runtime, admin_key: str
) -> None:
    default_admin = make_key(runtime, "default", TENANT_ADMIN)
    platform_id = client.get("/v1/me", headers=bearer(admin_key)).json()["key_id"]

    response = client.delete(f"/v1/api_keys/{platform_id}", headers=bearer(default_admin))

    assert response.status_code == 403
    assert client.get("/v1/tenants", headers=bearer(admin_key)).status_code == 200


def test_a_platform_admin_creates_lists_and_revokes_keys_of_any_tenant(
    client: TestClient, runtime: Runtime, beta_key_id: str
) -> None:
    platform = make_key(runtime, "default", PLATFORM_ONLY)

    created = client.post(
        "/v1/api_keys", json={"tenant": "beta", "scopes": ["admin"]}, headers=bearer(platform)
    ).json()
    listed = key_ids(client, platform, tenant="beta")
    revoked = client.delete(f"/v1/api_keys/{beta_key_id}", headers=bearer(platform))

    assert client.get("/v1/me", headers=bearer(created["key"])).json()["tenant"] == "beta"
    assert sorted(listed) == sorted([created["id"], beta_key_id])
    assert revoked.json()["revoked_at"] is not None


def test_a_platform_admin_without_a_tenant_lists_every_tenants_keys(
    client: TestClient, admin_key: str, acme_admin: str, beta_key_id: str
) -> None:
    listed = key_ids(client, admin_key)

    assert len(listed) == 3
    assert beta_key_id in listed


def test_the_platform_scope_alone_opens_no_feature_route(client: TestClient, runtime: Runtime) -> None:
    platform = make_key(runtime, "default", PLATFORM_ONLY)

    response = client.get("/v1/files", headers=bearer(platform))

    assert response.status_code == 403
