"""The lean ASGI path (`service.proxy.asgi`) answers the proxy's routes exactly as FastAPI's routes
did: same statuses, bodies and headers, for answers and for every kind of refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.proxy import router
from service.runtime import Runtime
from tests.conftest import make_key
from tests.proxy.fakes import FT_MODEL, FakeUpstream, add_fine_tuned_model

MESSAGES = [{"role": "user", "content": "Hello"}]
# Headers that differ between two answers whatever serves them.
VARYING = {"date", "server", "x-request-id", "x-ftm-upstream-request-id"}


@pytest.fixture
def fastapi_client(settings: Settings, runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"lean_proxy": False}), runtime)
    with TestClient(app) as test_client:
        yield test_client


def _requests(key: str, files_key: str) -> dict[str, dict[str, Any]]:
    auth = {"Authorization": f"Bearer {key}"}
    chat = {"model": FT_MODEL, "messages": MESSAGES}
    return {
        "answer": {"headers": auth, "json": chat},
        "stream": {"headers": auth, "json": {**chat, "stream": True}},
        "no key": {"headers": {}, "json": chat},
        "wrong scope": {"headers": {"Authorization": f"Bearer {files_key}"}, "json": chat},
        "unknown key": {"headers": {"Authorization": "Bearer sk-nope"}, "json": chat},
        "unknown model": {"headers": auth, "json": {**chat, "model": "ft:nope"}},
        "not json": {"headers": {**auth, "Content-Type": "application/json"}, "content": b"{nope"},
        "no model": {"headers": auth, "json": {"messages": MESSAGES}},
        "too large": {"headers": auth, "json": {**chat, "pad": "x" * 2_000_000}},
    }


def _outcome(response: Any) -> tuple[int, dict[str, str], Any]:
    headers = {name: value for name, value in response.headers.items() if name not in VARYING}
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line for line in response.text.splitlines() if line.startswith("data: ")]
        body: Any = [event if event == "data: [DONE]" else _stable(json.loads(event[6:])) for event in events]
    else:
        body = _stable(response.json())
    return response.status_code, headers, body


def _stable(body: Any) -> Any:
    """The body without what the fake provider makes anew for every answer."""
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if key not in {"id", "created"}}
    return body


@pytest.mark.parametrize(
    "case",
    [
        "answer",
        "stream",
        "no key",
        "wrong scope",
        "unknown key",
        "unknown model",
        "not json",
        "no model",
        "too large",
    ],
)
def test_the_lean_path_answers_as_the_fastapi_routes_do(
    case: str,
    runtime: Runtime,
    upstream: FakeUpstream,
    client: TestClient,
    fastapi_client: TestClient,
    tenant_key: str,
) -> None:
    # Given a fine-tuned model, and the same request for the lean path and for FastAPI's routes
    add_fine_tuned_model(runtime)
    request = _requests(tenant_key, make_key(runtime, scopes=frozenset({"files"})))[case]

    # When both answer it
    lean = client.post("/v1/chat/completions", **request)
    through_fastapi = fastapi_client.post("/v1/chat/completions", **request)

    # Then the answers are the same, each with a request id of its own
    assert _outcome(lean) == _outcome(through_fastapi)
    assert lean.headers["x-request-id"] != through_fastapi.headers["x-request-id"]


def test_the_lean_path_serves_the_proxy_routes_when_it_is_on(
    runtime: Runtime,
    upstream: FakeUpstream,
    client: TestClient,
    fastapi_client: TestClient,
    tenant_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given FastAPI's proxy routes broken
    add_fine_tuned_model(runtime)

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("FastAPI's route was used")

    monkeypatch.setattr(router, "proxy", broken)
    headers = {"Authorization": f"Bearer {tenant_key}"}
    body = {"model": FT_MODEL, "messages": MESSAGES}

    # When the same request goes to an app with the lean path on and to one with it off
    lean = client.post("/v1/chat/completions", headers=headers, json=body)
    through_fastapi = fastapi_client.post("/v1/chat/completions", headers=headers, json=body)

    # Then only the lean one answers: the other went through the broken route
    assert lean.status_code == 200
    assert through_fastapi.status_code == 500


def test_a_request_id_sent_by_the_caller_is_kept(
    runtime: Runtime, upstream: FakeUpstream, client: TestClient, tenant_key: str
) -> None:
    add_fine_tuned_model(runtime)
    response = client.post(
        "/v1/embeddings",
        headers={"Authorization": f"Bearer {tenant_key}", "X-Request-Id": "caller-42"},
        json={"model": FT_MODEL, "input": "hi"},
    )
    assert response.headers["x-request-id"] == "caller-42"


def test_other_methods_on_a_proxy_path_still_get_fastapis_405(client: TestClient) -> None:
    response = client.get("/v1/chat/completions")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
