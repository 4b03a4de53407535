"""The last active platform key cannot be revoked, not even by two revokes racing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service.auth import service as auth
from service.auth.models import ApiKeyRow
from service.auth.revocation import revoke_key
from service.clock import utcnow
from service.db import make_engine, make_session_factory, session_scope
from service.errors import Conflict
from service.runtime import Runtime
from tests.conftest import bearer, make_key, sdk_for

PLATFORM_ONLY = frozenset({"platform"})


def key_id_of(client: TestClient, key: str) -> str:
    key_id: str = client.get("/v1/me", headers=bearer(key)).json()["key_id"]
    return key_id


def test_revoking_the_last_active_platform_key_is_a_409_and_the_key_keeps_working(
    client: TestClient, admin_key: str
) -> None:
    sdk = sdk_for(client, admin_key)

    with pytest.raises(openai.ConflictError) as raised:
        sdk.delete(f"/api_keys/{key_id_of(client, admin_key)}", cast_to=object)

    assert raised.value.status_code == 409
    assert (raised.value.code, raised.value.param) == ("last_platform_admin_key", "key_id")
    assert client.get("/v1/tenants", headers=bearer(admin_key)).status_code == 200


def test_revoking_one_of_two_active_platform_keys_works(
    client: TestClient, runtime: Runtime, admin_key: str
) -> None:
    second = make_key(runtime, "default", PLATFORM_ONLY)

    response = client.delete(f"/v1/api_keys/{key_id_of(client, second)}", headers=bearer(admin_key))

    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    assert client.get("/v1/me", headers=bearer(second)).status_code == 401


def test_an_expired_platform_key_does_not_count_as_active(
    client: TestClient, runtime: Runtime, admin_key: str
) -> None:
    expired = make_key(runtime, "default", PLATFORM_ONLY)
    expired_id = key_id_of(client, expired)
    with session_scope(runtime.sessions) as session:
        row = session.get(ApiKeyRow, expired_id)
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)

    response = client.delete(f"/v1/api_keys/{key_id_of(client, admin_key)}", headers=bearer(admin_key))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_platform_admin_key"


@pytest.fixture
def two_sessions(runtime: Runtime) -> Iterator[tuple[Session, Session]]:
    """Two transactions at once; the second gives up at once on a lock the first holds."""
    impatient = make_engine(runtime.settings.database_url)

    @event.listens_for(impatient, "connect")
    def no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        if impatient.dialect.name == "sqlite":
            dbapi_connection.execute("PRAGMA busy_timeout = 0")

    first, second = runtime.sessions(), make_session_factory(impatient)()
    yield first, second
    first.close()
    second.close()
    impatient.dispose()


def revoke_impatiently(session: Session, key_id: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL lock_timeout = '100ms'"))
    try:
        revoke_key(session, auth.get_key(session, key_id))
    finally:
        session.rollback()


def test_two_concurrent_revokes_of_the_last_two_platform_keys_do_not_both_succeed(
    client: TestClient, runtime: Runtime, admin_key: str, two_sessions: tuple[Session, Session]
) -> None:
    other_key = make_key(runtime, "default", PLATFORM_ONLY)
    admin_id, other_id = key_id_of(client, admin_key), key_id_of(client, other_key)
    first, second = two_sessions

    revoke_key(first, auth.get_key(first, admin_id))  # written, not yet committed
    with pytest.raises(OperationalError):  # the second revoke has to wait for the first
        revoke_impatiently(second, other_id)
    first.commit()
    with pytest.raises(Conflict) as raised:  # and then finds its key is the last one
        revoke_impatiently(second, other_id)

    assert raised.value.code == "last_platform_admin_key"
    assert client.get("/v1/me", headers=bearer(admin_key)).status_code == 401
    assert client.get("/v1/tenants", headers=bearer(other_key)).status_code == 200


def test_a_revoke_that_finds_its_key_revoked_meanwhile_keeps_the_first_revocation(
    client: TestClient, runtime: Runtime, admin_key: str, two_sessions: tuple[Session, Session]
) -> None:
    other_id = key_id_of(client, make_key(runtime, "default", PLATFORM_ONLY))
    first, second = two_sessions
    stale = auth.get_key(second, other_id)
    second.commit()
    first_revoked_at = revoke_key(first, auth.get_key(first, other_id)).revoked_at
    first.commit()

    revoked = revoke_key(second, stale)

    assert (revoked.revoked_at, first_revoked_at is not None) == (first_revoked_at, True)
