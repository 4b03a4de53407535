from __future__ import annotations

from datetime import timedelta

import openai
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, text

from service.auth import service as auth
from service.auth.keys import Scope, hash_key
from service.auth.models import ApiKeyRow
from service.bootstrap import ensure_bootstrap_key
from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.runtime import Runtime
from tests.conftest import bearer, make_key

UNAUTHORIZED = {
    "error": {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


def test_a_valid_key_reaches_an_admin_route(client: TestClient, admin_key: str) -> None:
    response = client.get("/v1/tenants", headers=bearer(admin_key))

    assert response.status_code == 200
    assert [t["name"] for t in response.json()["data"]] == ["default"]


def test_a_missing_key_is_a_401_in_openai_error_shape(client: TestClient) -> None:
    response = client.get("/v1/tenants")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["code"] == "missing_api_key"


def test_a_wrong_key_is_a_401_in_openai_error_shape(client: TestClient, admin_key: str) -> None:
    wrong = admin_key[:-4] + "AAAA"

    response = client.get("/v1/tenants", headers=bearer(wrong))

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_revoked_and_expired_keys_get_the_same_401_as_a_wrong_one(
    client: TestClient, runtime: Runtime
) -> None:
    revoked, expired = make_key(runtime, "a"), make_key(runtime, "b")
    with session_scope(runtime.sessions) as session:
        rows = {row.prefix: row for row in session.scalars(select(ApiKeyRow))}
        rows[revoked[:12]].revoked_at = utcnow()
        rows[expired[:12]].expires_at = utcnow() - timedelta(seconds=1)

    bodies = [client.get("/v1/me", headers=bearer(key)).json() for key in (revoked, expired)]

    assert bodies == [UNAUTHORIZED, UNAUTHORIZED]


def test_a_key_without_the_scope_gets_a_403(client: TestClient, tenant_key: str) -> None:
    response = client.get("/v1/tenants", headers=bearer(tenant_key))

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


def test_the_openai_sdk_raises_authentication_error_for_a_bad_key(client: TestClient) -> None:
    sdk = openai.OpenAI(
        base_url="http://testserver/v1",
        api_key="ftm_not-a-real-key-at-all",
        http_client=client,
        max_retries=0,
    )

    with pytest.raises(openai.AuthenticationError) as raised:
        sdk.get("/me", cast_to=object)

    assert raised.value.code == "invalid_api_key"


def test_keys_are_stored_only_as_hashes(runtime: Runtime) -> None:
    key = make_key(runtime)

    with runtime.engine.connect() as connection:
        dump = " ".join(str(row) for row in connection.execute(text("SELECT * FROM api_keys")))

    assert key not in dump
    assert hash_key(key) in dump


def test_the_bootstrap_key_is_an_admin_key_of_tenant_default(runtime: Runtime) -> None:
    key = "ftm_bootstrap-key-for-tests-0123456789"
    with session_scope(runtime.sessions) as session:
        auth.ensure_key(session, key, tenant_name="default", scopes=[Scope.ADMIN])
        auth.ensure_key(session, key, tenant_name="default", scopes=[Scope.ADMIN])  # idempotent

    with session_scope(runtime.sessions) as session:
        principal = auth.authenticate(session, key)
        count = len(list(session.scalars(select(ApiKeyRow))))

    assert (principal.tenant_name, principal.has(Scope.FILES), count) == ("default", True, 1)


def test_the_bootstrap_key_is_a_platform_admin_of_tenant_default(
    client: TestClient, settings: Settings, runtime: Runtime
) -> None:
    key = "ftm_bootstrap-key-for-tests-0123456789"
    ensure_bootstrap_key(settings.model_copy(update={"bootstrap_api_key": SecretStr(key)}), runtime.sessions)

    caller = client.get("/v1/me", headers=bearer(key)).json()
    tenants = client.get("/v1/tenants", headers=bearer(key))

    assert (caller["tenant"], "platform" in caller["scopes"], tenants.status_code) == ("default", True, 200)
