"""The proxy relays a tenant's requests with its own credentials at the provider when it set
some, from memory (no database read per request), and every API process sees a set or a delete
within a second."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import event

from service.auth.service import get_or_create_tenant
from service.config import Settings
from service.db import session_scope
from service.providers.credentials_store import NewCredentials, save_credentials
from service.runtime import Runtime
from tests.conftest import bearer, make_key, sdk_for
from tests.proxy.fakes import FT_MODEL, UPSTREAM_KEY, FakeUpstream, add_fine_tuned_model, openai_error
from tests.proxy.test_cache_changes import api_process, seen_within

ACME_KEY = "sk-acme-own-account-0001"
CREDENTIALS = "/v1/tenants/acme/providers/local/credentials"
MESSAGES: Any = [{"role": "user", "content": "When was Jonny Whizbang born?"}]
CHAT = {"model": FT_MODEL, "messages": MESSAGES}
WITHIN_S = 1.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Long-lived caches: a change must arrive by announcement, not by expiry.
    return settings.model_copy(
        update={"credentials_key": SecretStr(Fernet.generate_key().decode()), "route_cache_ttl_s": 60.0}
    )


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    return bearer(admin_key)


def last_authorization(upstream: FakeUpstream) -> str | None:
    return upstream.calls("/v1/chat/completions")[-1].authorization


def test_a_tenants_request_is_relayed_with_its_own_key_and_ids(
    client: TestClient, caller: openai.OpenAI, upstream: FakeUpstream, runtime: Runtime, admin: dict[str, str]
) -> None:
    add_fine_tuned_model(runtime)
    body = {"api_key": ACME_KEY, "organization": "org-acme", "project": "proj_acme"}
    client.put(CREDENTIALS, json=body, headers=admin)

    caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES)

    headers = upstream.calls("/v1/chat/completions")[-1].headers
    assert headers["authorization"] == f"Bearer {ACME_KEY}"
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-acme", "proj_acme")


def test_a_streamed_request_is_relayed_with_the_tenants_key_too(
    client: TestClient, caller: openai.OpenAI, upstream: FakeUpstream, runtime: Runtime, admin: dict[str, str]
) -> None:
    add_fine_tuned_model(runtime)
    client.put(CREDENTIALS, json={"api_key": ACME_KEY}, headers=admin)

    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES, stream=True)
        if chunk.choices
    )

    assert text
    assert last_authorization(upstream) == f"Bearer {ACME_KEY}"


def test_another_tenants_request_still_carries_the_operators_key(
    client: TestClient, upstream: FakeUpstream, runtime: Runtime, admin: dict[str, str]
) -> None:
    add_fine_tuned_model(runtime, tenant="globex")
    client.put(CREDENTIALS, json={"api_key": ACME_KEY}, headers=admin)

    sdk_for(client, make_key(runtime, "globex")).chat.completions.create(model=FT_MODEL, messages=MESSAGES)

    assert last_authorization(upstream) == f"Bearer {UPSTREAM_KEY}"
    assert "openai-organization" not in upstream.calls("/v1/chat/completions")[-1].headers


def test_requests_read_the_credentials_once_not_per_request(
    caller: openai.OpenAI, upstream: FakeUpstream, runtime: Runtime
) -> None:
    add_fine_tuned_model(runtime)
    with session_scope(runtime.sessions) as session:  # stored, without an announcement to race with
        tenant = get_or_create_tenant(session, "acme")
        new = NewCredentials(ACME_KEY)
        save_credentials(session, runtime.providers.cipher, tenant_id=tenant.id, provider="local", new=new)
    reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "tenant_provider_credentials" in statement:
            reads.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)

    assert len(reads) == 1
    assert {call.authorization for call in upstream.calls("/v1/chat/completions")} == {f"Bearer {ACME_KEY}"}


@pytest.fixture
def first(settings: Settings, runtime: Runtime, upstream: FakeUpstream) -> Iterator[TestClient]:
    yield from api_process(settings, runtime)


@pytest.fixture
def second(settings: Settings, runtime: Runtime, upstream: FakeUpstream) -> Iterator[TestClient]:
    yield from api_process(settings, runtime)


def test_credentials_set_through_one_api_process_are_used_by_another_within_a_second(
    first: TestClient, second: TestClient, runtime: Runtime, upstream: FakeUpstream, admin: dict[str, str]
) -> None:
    add_fine_tuned_model(runtime)
    acme = bearer(make_key(runtime))
    second.post("/v1/chat/completions", headers=acme, json=CHAT)  # "none" is cached there now

    assert first.put(CREDENTIALS, json={"api_key": ACME_KEY}, headers=admin).status_code == 200

    def uses_tenant_key() -> bool:
        second.post("/v1/chat/completions", headers=acme, json=CHAT)
        return last_authorization(upstream) == f"Bearer {ACME_KEY}"

    assert seen_within(uses_tenant_key, WITHIN_S) < WITHIN_S


def test_after_a_delete_through_one_process_another_falls_back_to_the_operators_key_within_a_second(
    first: TestClient, second: TestClient, runtime: Runtime, upstream: FakeUpstream, admin: dict[str, str]
) -> None:
    add_fine_tuned_model(runtime)
    acme = bearer(make_key(runtime))
    first.put(CREDENTIALS, json={"api_key": ACME_KEY}, headers=admin)
    second.post("/v1/chat/completions", headers=acme, json=CHAT)
    assert last_authorization(upstream) == f"Bearer {ACME_KEY}"  # cached there now

    assert first.delete(CREDENTIALS, headers=admin).status_code == 200

    def uses_operator_key() -> bool:
        second.post("/v1/chat/completions", headers=acme, json=CHAT)
        return last_authorization(upstream) == f"Bearer {UPSTREAM_KEY}"

    assert seen_within(uses_operator_key, WITHIN_S) < WITHIN_S


def test_a_provider_refusing_the_tenants_own_key_says_so_without_quoting_it(
    client: TestClient, caller: openai.OpenAI, upstream: FakeUpstream, runtime: Runtime, admin: dict[str, str]
) -> None:
    add_fine_tuned_model(runtime)
    client.put(CREDENTIALS, json={"api_key": ACME_KEY}, headers=admin)
    upstream.fail_with = openai_error(
        401, "Incorrect API key provided: sk-acme***", "invalid_request_error", None
    )

    with pytest.raises(openai.InternalServerError) as raised:
        caller.chat.completions.create(model=FT_MODEL, messages=MESSAGES)

    assert raised.value.status_code == 502
    assert "your tenant's own credentials" in raised.value.message
    assert "/v1/tenants/{name}/providers/local/credentials" in raised.value.message
    assert "sk-acme" not in raised.value.response.text
