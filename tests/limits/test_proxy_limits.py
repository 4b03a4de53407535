"""Per-minute limits on the proxy: OpenAI's 429 and headers, limits shared by API processes through
Redis, limits set through the admin API, and serving on when Redis is gone."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.runtime import Runtime
from tests.conftest import bearer, make_key
from tests.limits.conftest import limit_app
from tests.proxy.fakes import FakeUpstream

BASE = "gpt-4o-mini-2024-07-18"
BODY: dict[str, Any] = {"model": BASE, "messages": [{"role": "user", "content": "hi"}]}


def chat(client: TestClient, key: str, body: dict[str, Any] | None = None) -> Any:
    return client.post("/v1/chat/completions", json=body or BODY, headers=bearer(key))


def limited(settings: Settings, **limits: int) -> Settings:
    return settings.model_copy(update=limits)


def test_a_request_over_the_keys_limit_is_openais_429_with_retry_after(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    tenant_key: str,
    upstream: FakeUpstream,
    shared_redis: Callable[[], aioredis.Redis],
) -> None:
    limit_app(app, limited(settings, key_requests_per_minute=2), shared_redis)

    answers = [chat(client, tenant_key) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.json()["error"]["type"] == "requests"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["param"] is None
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(upstream.calls("/v1/chat/completions")) == 2


def test_every_proxied_answer_carries_openais_rate_limit_headers(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    tenant_key: str,
    upstream: FakeUpstream,
    shared_redis: Callable[[], aioredis.Redis],
) -> None:
    limit_app(app, limited(settings, key_requests_per_minute=5, key_tokens_per_minute=10_000), shared_redis)

    first, second = chat(client, tenant_key), chat(client, tenant_key)

    assert first.headers["x-ratelimit-limit-requests"] == "5"
    assert [
        first.headers["x-ratelimit-remaining-requests"],
        second.headers["x-ratelimit-remaining-requests"],
    ] == [
        "4",
        "3",
    ]
    assert re.fullmatch(r"(\d+m)?\d+s|\d+ms", first.headers["x-ratelimit-reset-requests"])
    assert first.headers["x-ratelimit-limit-tokens"] == "10000"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 10_000
    assert "x-ratelimit-reset-tokens" in first.headers


def test_a_request_whose_tokens_do_not_fit_the_tenants_limit_is_a_429_of_type_tokens(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    tenant_key: str,
    upstream: FakeUpstream,
    shared_redis: Callable[[], aioredis.Redis],
) -> None:
    limit_app(app, limited(settings, tenant_tokens_per_minute=100), shared_redis)

    answer = chat(client, tenant_key, {**BODY, "max_tokens": 500})

    assert answer.status_code == 429
    assert answer.json()["error"]["type"] == "tokens"
    assert upstream.calls("/v1/chat/completions") == []


def test_the_token_estimate_is_corrected_to_the_usage_the_provider_reported(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    tenant_key: str,
    upstream: FakeUpstream,
    shared_redis: Callable[[], aioredis.Redis],
) -> None:
    limit_app(app, limited(settings, key_tokens_per_minute=100_000), shared_redis)
    chat(client, tenant_key, {**BODY, "max_tokens": 1000})  # estimated at over 1000 tokens
    client.portal.call(app.state.limiter.send_corrections)  # type: ignore[union-attr]

    after = chat(client, tenant_key)

    used = upstream.reported_usage[0]["total_tokens"]
    remaining = int(after.headers["x-ratelimit-remaining-tokens"])
    assert 100_000 - remaining - used < 100  # the first request counts its actual tokens, not 1000+


def test_a_limit_holds_across_two_api_processes_sharing_redis(
    settings: Settings,
    runtime: Runtime,
    tenant_key: str,
    upstream: FakeUpstream,
    shared_redis: Callable[[], aioredis.Redis],
) -> None:
    apps = [create_app(settings, runtime), create_app(settings, runtime)]
    for app in apps:
        limit_app(app, limited(settings, key_requests_per_minute=3), shared_redis)

    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        statuses = [chat(client, tenant_key).status_code for client in (first, second, first, second, first)]

    assert statuses == [200, 200, 200, 429, 429]


def test_one_keys_limit_leaves_another_key_alone_and_the_tenants_limit_covers_both(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    runtime: Runtime,
    tenant_key: str,
    upstream: FakeUpstream,
    shared_redis: Callable[[], aioredis.Redis],
) -> None:
    limit_app(app, limited(settings, key_requests_per_minute=1, tenant_requests_per_minute=2), shared_redis)
    other_key = make_key(runtime, "acme")

    statuses = [chat(client, key).status_code for key in (tenant_key, tenant_key, other_key, other_key)]

    assert statuses == [200, 429, 200, 429]


def test_limits_set_on_a_key_and_a_tenant_through_the_admin_api_apply_at_once(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    admin_key: str,
    tenant_key: str,
    upstream: FakeUpstream,
    shared_redis: Callable[[], aioredis.Redis],
) -> None:
    limit_app(app, settings, shared_redis)
    key_id = client.get("/v1/me", headers=bearer(tenant_key)).json()["key_id"]
    assert "x-ratelimit-limit-requests" not in chat(client, tenant_key).headers  # no limit by default

    patched = client.post(
        f"/v1/api_keys/{key_id}", json={"requests_per_minute": 1}, headers=bearer(admin_key)
    )
    first, second = chat(client, tenant_key), chat(client, tenant_key)
    tenant = client.post("/v1/tenants/acme", json={"tokens_per_minute": 5}, headers=bearer(admin_key))
    client.post(f"/v1/api_keys/{key_id}", json={"requests_per_minute": None}, headers=bearer(admin_key))
    third = chat(client, tenant_key)

    assert patched.status_code == 200
    assert patched.json()["requests_per_minute"] == 1
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    assert (first.status_code, second.status_code) == (200, 429)
    assert tenant.json()["tokens_per_minute"] == 5
    assert (third.status_code, third.json()["error"]["type"]) == (429, "tokens")


def test_a_tenant_admin_cannot_change_its_own_tenants_limits(client: TestClient, runtime: Runtime) -> None:
    tenant_admin = make_key(runtime, "acme", frozenset({"admin"}))

    answer = client.post("/v1/tenants/acme", json={"requests_per_minute": 0}, headers=bearer(tenant_admin))

    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("field", "value"),
    [("requests_per_minute", -1), ("tokens_per_minute", 2**31)],
    ids=["negative", "too big"],
)
def test_a_limit_out_of_range_is_a_400_naming_the_field(
    client: TestClient, admin_key: str, field: str, value: int
) -> None:
    answer = client.post("/v1/tenants", json={"name": "neg", field: value}, headers=bearer(admin_key))
    key = client.post("/v1/api_keys", json={"name": "k", field: value}, headers=bearer(admin_key))

    for refused in (answer, key):
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == field


def test_with_redis_unreachable_the_proxy_serves_without_limits_logs_once_and_counts_it(
    app: FastAPI,
    client: TestClient,
    settings: Settings,
    tenant_key: str,
    upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = limited(settings, key_requests_per_minute=1).model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0"}
    )
    limit_app(app, gone, None)

    with caplog.at_level(logging.WARNING, logger="service.limits.limiter"):
        answers = [chat(client, tenant_key) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert all("x-ratelimit-limit-requests" not in answer.headers for answer in answers)
    assert len([r for r in caplog.records if "rate limits unavailable" in r.getMessage()]) == 1
    assert "ftm_rate_limit_unavailable_total 3.0" in client.get("/metrics").text
