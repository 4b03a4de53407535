"""A change made through one API process reaches another's in-memory caches within a second,
through Redis (fakeredis here; CI's Redis there), well inside the caches' own lifetimes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.runtime import Runtime
from tests.conftest import bearer, make_key
from tests.proxy.fakes import FT_MODEL, FakeUpstream, add_fine_tuned_model

CANARY = "ft:gpt-4o-mini-2024-07-18:acme:support:def456"
CHAT = {"model": "support-bot", "messages": [{"role": "user", "content": "Hi"}]}
WITHIN_S = 1.0


def api_process(settings: Settings, runtime: Runtime) -> Iterator[TestClient]:
    """An API process of its own (route cache, key cache, listener), on the shared store and Redis."""
    app = create_app(settings, runtime)
    with TestClient(app) as client:
        assert app.state.change_listener.wait_subscribed(5)
        yield client


@pytest.fixture
def long_lived_caches(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_key_cache_ttl_s": 60.0})


@pytest.fixture
def first(long_lived_caches: Settings, runtime: Runtime, upstream: FakeUpstream) -> Iterator[TestClient]:
    yield from api_process(long_lived_caches, runtime)


@pytest.fixture
def second(long_lived_caches: Settings, runtime: Runtime, upstream: FakeUpstream) -> Iterator[TestClient]:
    yield from api_process(long_lived_caches, runtime)


def seen_within(probe: Callable[[], bool], seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds * 3:
        if probe():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError("the change was never seen")


def test_a_rollback_through_one_api_process_is_seen_by_the_next_request_on_another_within_a_second(
    first: TestClient, second: TestClient, runtime: Runtime
) -> None:
    add_fine_tuned_model(runtime)
    add_fine_tuned_model(runtime, model=CANARY)
    headers = bearer(make_key(runtime))
    first.post(
        "/v1/deployments", headers=headers, json={"name": "support-bot", "targets": [{"model": FT_MODEL}]}
    )
    first.post("/v1/deployments/support-bot", headers=headers, json={"targets": [{"model": CANARY}]})
    before = second.post("/v1/chat/completions", headers=headers, json=CHAT).headers  # cached now

    first.post("/v1/deployments/support-bot/rollback", headers=headers, json={"version": 1})

    def rolled_back() -> bool:
        answer: Any = second.post("/v1/chat/completions", headers=headers, json=CHAT)
        return bool(answer.headers["x-ftm-deployment-version"] == "3")

    assert (before["x-ftm-deployment-version"], before["x-ftm-model"]) == ("2", CANARY)
    assert seen_within(rolled_back, WITHIN_S) < WITHIN_S
    assert second.post("/v1/chat/completions", headers=headers, json=CHAT).headers["x-ftm-model"] == FT_MODEL


def test_a_key_revoked_through_one_api_process_stops_working_on_another_within_a_second(
    first: TestClient, second: TestClient, runtime: Runtime
) -> None:
    admin = bearer(make_key(runtime, "default", frozenset({"admin", "platform"})))
    victim = make_key(runtime)
    key_id = second.get("/v1/me", headers=bearer(victim)).json()["key_id"]  # cached for 60 s now

    assert first.delete(f"/v1/api_keys/{key_id}", headers=admin).status_code == 200

    assert (
        seen_within(lambda: second.get("/v1/me", headers=bearer(victim)).status_code == 401, WITHIN_S)
        < WITHIN_S
    )
