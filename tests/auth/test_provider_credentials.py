"""A tenant's own provider credentials through the admin API: set, shown only as a hint, stored
encrypted, readable after a key rotation, isolated between tenants, refused without a key."""

from __future__ import annotations

import logging
import threading

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from service.auth.keys import Scope
from service.auth.service import get_or_create_tenant
from service.cli import main
from service.config import Settings, get_settings
from service.db import session_scope
from service.providers.credentials import CredentialsCipher, CredentialsUnreadable
from service.providers.credentials_store import (
    NewCredentials,
    TenantCredentialsRow,
    load_credentials,
    save_credentials,
)
from service.runtime import Runtime
from tests.conftest import bearer, make_key

FIRST_KEY = Fernet.generate_key().decode()
TENANT_SECRET = "sk-acme-own-account-7f3Q"
PATH = "/v1/tenants/acme/providers/local/credentials"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.credentials_key = SecretStr(FIRST_KEY)
    return settings


@pytest.fixture
def acme_admin(runtime: Runtime) -> str:
    return make_key(runtime, "acme", frozenset({Scope.ADMIN}))


def test_set_credentials_are_shown_only_as_the_keys_last_four_characters(
    client: TestClient, acme_admin: str
) -> None:
    body = {"api_key": TENANT_SECRET, "organization": "org-acme", "project": "proj_acme"}

    put = client.put(PATH, json=body, headers=bearer(acme_admin))
    shown = client.get(PATH, headers=bearer(acme_admin))

    assert put.status_code == 200
    assert shown.json() == put.json()
    assert shown.json()["api_key_hint"] == "7f3Q"
    assert (shown.json()["organization"], shown.json()["project"]) == ("org-acme", "proj_acme")
    assert TENANT_SECRET not in put.text + shown.text


def test_the_stored_column_holds_the_key_encrypted_not_in_plaintext(
    client: TestClient, acme_admin: str, runtime: Runtime
) -> None:
    client.put(PATH, json={"api_key": TENANT_SECRET}, headers=bearer(acme_admin))

    with session_scope(runtime.sessions) as session:
        row = session.scalars(select(TenantCredentialsRow)).one()
        stored = row.api_key_encrypted
        readable = load_credentials(
            session, runtime.providers.cipher, tenant_id=row.tenant_id, provider="local"
        )

    assert TENANT_SECRET not in stored
    assert Fernet(FIRST_KEY.encode()).decrypt(stored.encode()).decode() == TENANT_SECRET
    assert readable is not None
    assert readable.api_key == TENANT_SECRET


def test_after_a_rotation_rows_written_with_the_old_key_still_decrypt(
    client: TestClient, acme_admin: str, runtime: Runtime
) -> None:
    client.put(PATH, json={"api_key": TENANT_SECRET}, headers=bearer(acme_admin))
    new_key = Fernet.generate_key().decode()
    rotated = CredentialsCipher.from_setting(f"{new_key},{FIRST_KEY}")
    old_one_dropped = CredentialsCipher.from_setting(new_key)

    with session_scope(runtime.sessions) as session:
        row = session.scalars(select(TenantCredentialsRow)).one()
        decrypted = rotated.decrypt(row.api_key_encrypted)
        reencrypted = rotated.encrypt(decrypted)

    assert decrypted == TENANT_SECRET
    assert old_one_dropped.decrypt(reencrypted) == TENANT_SECRET  # new writes use the first key
    with pytest.raises(CredentialsUnreadable):
        old_one_dropped.decrypt(row.api_key_encrypted)


def test_setting_them_again_replaces_the_key_in_the_same_credentials(
    client: TestClient, acme_admin: str
) -> None:
    first = client.put(PATH, json={"api_key": TENANT_SECRET, "project": "p1"}, headers=bearer(acme_admin))

    second = client.put(PATH, json={"api_key": "sk-acme-rotated-key-9xYz"}, headers=bearer(acme_admin))

    assert second.json()["id"] == first.json()["id"]
    assert (second.json()["api_key_hint"], second.json()["project"]) == ("9xYz", None)


def test_without_an_encryption_key_setting_is_a_503_and_stores_nothing(
    client: TestClient, acme_admin: str, settings: Settings, runtime: Runtime
) -> None:
    settings.credentials_key = None

    response = client.put(PATH, json={"api_key": TENANT_SECRET}, headers=bearer(acme_admin))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "credentials_key_missing"
    with session_scope(runtime.sessions) as session:
        assert session.scalars(select(TenantCredentialsRow)).all() == []


def test_another_tenants_credentials_are_a_404_to_a_tenant_admin(
    client: TestClient, acme_admin: str, admin_key: str, runtime: Runtime
) -> None:
    make_key(runtime, "globex")
    other = "/v1/tenants/globex/providers/local/credentials"
    client.put(other, json={"api_key": "sk-globex-secret-1234"}, headers=bearer(admin_key))

    shown = client.get(other, headers=bearer(acme_admin))
    replaced = client.put(other, json={"api_key": TENANT_SECRET}, headers=bearer(acme_admin))
    deleted = client.delete(other, headers=bearer(acme_admin))
    still = client.get(other, headers=bearer(admin_key))

    assert [shown.status_code, replaced.status_code, deleted.status_code] == [404, 404, 404]
    assert shown.json()["error"]["code"] == "tenant_not_found"
    assert still.json()["api_key_hint"] == "1234"


def test_an_unknown_provider_is_a_400_naming_the_parameter(client: TestClient, acme_admin: str) -> None:
    response = client.put(
        "/v1/tenants/acme/providers/nowhere/credentials",
        json={"api_key": TENANT_SECRET},
        headers=bearer(acme_admin),
    )

    assert (response.status_code, response.json()["error"]["param"]) == (400, "provider")


def test_a_key_without_admin_scope_cannot_set_them(client: TestClient, tenant_key: str) -> None:
    response = client.put(PATH, json={"api_key": TENANT_SECRET}, headers=bearer(tenant_key))

    assert response.status_code == 403


def test_deleted_credentials_are_gone(client: TestClient, acme_admin: str) -> None:
    client.put(PATH, json={"api_key": TENANT_SECRET}, headers=bearer(acme_admin))

    deleted = client.delete(PATH, headers=bearer(acme_admin))
    shown = client.get(PATH, headers=bearer(acme_admin))
    again = client.delete(PATH, headers=bearer(acme_admin))

    assert deleted.json()["api_key_hint"] == "7f3Q"
    assert (shown.status_code, shown.json()["error"]["code"]) == (404, "provider_credentials_not_found")
    assert again.status_code == 404


def test_the_key_is_never_logged(
    client: TestClient, acme_admin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    client.put(PATH, json={"api_key": TENANT_SECRET, "verify": False}, headers=bearer(acme_admin))
    client.get(PATH, headers=bearer(acme_admin))
    client.delete(PATH, headers=bearer(acme_admin))

    assert caplog.records
    assert TENANT_SECRET not in caplog.text


def test_rotate_credentials_reencrypts_every_row_so_the_old_key_can_be_dropped(
    client: TestClient, acme_admin: str, runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put(PATH, json={"api_key": TENANT_SECRET}, headers=bearer(acme_admin))
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("FTM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FTM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FTM_CREDENTIALS_KEY", f"{new_key},{FIRST_KEY}")
    get_settings.cache_clear()

    try:
        result = CliRunner().invoke(main, ["db", "rotate-credentials"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 " in result.output
    with session_scope(runtime.sessions) as session:
        stored = session.scalars(select(TenantCredentialsRow)).one().api_key_encrypted
    assert CredentialsCipher.from_setting(new_key).decrypt(stored) == TENANT_SECRET


def test_two_sets_at_once_end_with_one_row_holding_one_of_the_keys(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        tenant_id = get_or_create_tenant(session, "acme").id
    keys = ["sk-first-writer-key-1111", "sk-second-writer-key-2222"]
    barrier = threading.Barrier(len(keys))
    errors: list[BaseException] = []

    def set_key(api_key: str) -> None:
        try:
            with session_scope(runtime.sessions) as session:
                barrier.wait(5)
                save_credentials(
                    session,
                    runtime.providers.cipher,
                    tenant_id=tenant_id,
                    provider="local",
                    new=NewCredentials(api_key),
                )
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=set_key, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    with session_scope(runtime.sessions) as session:
        (row,) = session.scalars(select(TenantCredentialsRow)).all()
        assert runtime.providers.cipher.decrypt(row.api_key_encrypted) in keys
