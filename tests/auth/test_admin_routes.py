from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import bearer


def test_admin_creates_a_tenant_and_a_key_that_works_once_shown(client: TestClient, admin_key: str) -> None:
    client.post("/v1/tenants", json={"name": "search-team"}, headers=bearer(admin_key))

    created = client.post(
        "/v1/api_keys", json={"tenant": "search-team", "scopes": ["files"]}, headers=bearer(admin_key)
    ).json()
    listed = client.get("/v1/api_keys", params={"tenant": "search-team"}, headers=bearer(admin_key)).json()

    assert created["key"].startswith(created["prefix"])
    assert client.get("/v1/me", headers=bearer(created["key"])).json()["tenant"] == "search-team"
    assert [k["id"] for k in listed["data"]] == [created["id"]]
    assert "key" not in listed["data"][0]


def test_a_revoked_key_stops_working(client: TestClient, admin_key: str) -> None:
    client.post("/v1/tenants", json={"name": "t1"}, headers=bearer(admin_key))
    created = client.post("/v1/api_keys", json={"tenant": "t1"}, headers=bearer(admin_key)).json()

    client.delete(f"/v1/api_keys/{created['id']}", headers=bearer(admin_key))

    assert client.get("/v1/me", headers=bearer(created["key"])).status_code == 401


def test_an_unknown_scope_is_a_400_naming_the_parameter(client: TestClient, admin_key: str) -> None:
    client.post("/v1/tenants", json={"name": "t2"}, headers=bearer(admin_key))

    response = client.post(
        "/v1/api_keys", json={"tenant": "t2", "scopes": ["root"]}, headers=bearer(admin_key)
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "scopes[0]"


def test_a_duplicate_tenant_is_a_400_and_changes_nothing(client: TestClient, admin_key: str) -> None:
    client.post("/v1/tenants", json={"name": "dup"}, headers=bearer(admin_key))

    response = client.post("/v1/tenants", json={"name": "dup"}, headers=bearer(admin_key))
    names = [t["name"] for t in client.get("/v1/tenants", headers=bearer(admin_key)).json()["data"]]

    assert (response.status_code, response.json()["error"]["param"]) == (400, "name")
    assert names.count("dup") == 1
