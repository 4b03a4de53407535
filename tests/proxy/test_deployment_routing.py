"""A request's `model` naming a deployment is routed to one of its arms, falls back when that
arm's provider fails, and says in its headers which model, deployment and version served it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from service.db import session_scope
from service.models.models import FineTunedModelRow
from service.runtime import Runtime
from tests.conftest import bearer, make_key
from tests.proxy.fakes import (
    ANSWER,
    FT_MODEL,
    FakeUpstream,
    add_fine_tuned_model,
    nothing_listening_url,
    openai_error,
    point_provider_at,
)

BASE = "gpt-4o-mini-2024-07-18"
CANARY = "ft:gpt-4o-mini-2024-07-18:acme:support:def456"
BROKEN = "ft:gpt-4o-mini-2024-07-18:acme:support:broken"
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def headers(tenant_key: str) -> dict[str, str]:
    return bearer(tenant_key)


@pytest.fixture
def models(runtime: Runtime, upstream: FakeUpstream) -> None:
    add_fine_tuned_model(runtime)
    add_fine_tuned_model(runtime, model=CANARY)


def deploy(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = client.post("/v1/deployments", headers=headers, json={"name": "support-bot", **body})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def ask(caller: openai.OpenAI, model: str = "support-bot", **extra: Any) -> Any:
    return caller.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, **extra)


@pytest.mark.usefixtures("models")
def test_the_sdk_calls_a_deployment_by_name_and_its_target_answers(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI, upstream: FakeUpstream
) -> None:
    # Given a deployment of one fine-tuned model
    deploy(client, headers, targets=[{"model": FT_MODEL}])

    # When the SDK asks the deployment
    completion = caller.chat.completions.create(model="support-bot", messages=MESSAGES)

    # Then the provider got the fine-tuned model's name, and the body's model is the provider's
    assert completion.choices[0].message.content == ANSWER
    [call] = upstream.calls("/v1/chat/completions")
    assert call.body is not None
    assert call.body["model"] == FT_MODEL
    assert completion.model == FT_MODEL


@pytest.mark.usefixtures("models")
def test_a_deployments_answer_names_the_model_the_deployment_and_its_version(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI
) -> None:
    # Given a deployment at version 2
    deploy(client, headers, targets=[{"model": CANARY}])
    client.post("/v1/deployments/support-bot", headers=headers, json={"targets": [{"model": FT_MODEL}]})

    # When it is asked
    raw = ask(caller)

    # Then the headers say who answered
    assert raw.headers["x-ftm-model"] == FT_MODEL
    assert raw.headers["x-ftm-deployment"] == "support-bot"
    assert raw.headers["x-ftm-deployment-version"] == "2"
    assert raw.headers["x-ftm-provider"] == "local"


@pytest.mark.usefixtures("models")
def test_a_model_asked_directly_names_itself_and_no_deployment(caller: openai.OpenAI) -> None:
    raw = ask(caller, FT_MODEL)

    assert raw.headers["x-ftm-model"] == FT_MODEL
    assert raw.headers["x-ftm-provider"] == "local"
    assert "x-ftm-deployment" not in raw.headers


@pytest.mark.usefixtures("models")
def test_a_stream_carries_the_same_headers(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI
) -> None:
    deploy(client, headers, targets=[{"model": FT_MODEL}])

    with caller.chat.completions.with_streaming_response.create(
        model="support-bot", messages=MESSAGES, stream=True
    ) as raw:
        text = "".join(raw.iter_text())

    assert raw.headers["x-ftm-model"] == FT_MODEL
    assert raw.headers["x-ftm-deployment-version"] == "1"
    assert "[DONE]" in text


@pytest.mark.usefixtures("models")
def test_a_sticky_user_stays_on_one_arm_through_the_proxy(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI
) -> None:
    # Given a 50/50 deployment sticky by `user`
    deploy(
        client,
        headers,
        targets=[{"model": FT_MODEL, "weight": 50}, {"model": CANARY, "weight": 50}],
        sticky={"source": "user"},
    )

    # When each of a few users asks several times
    served = {user: {ask(caller, user=user).headers["x-ftm-model"] for _ in range(5)} for user in "abcdefgh"}

    # Then each user was served by one arm, and both arms served someone
    assert all(len(models) == 1 for models in served.values())
    assert set().union(*served.values()) == {FT_MODEL, CANARY}


@pytest.mark.usefixtures("models")
@pytest.mark.parametrize(
    "failure",
    [
        openai_error(500, "The server had an error.", "server_error", None),
        openai_error(503, "Overloaded.", "server_error", None),
        openai_error(429, "Rate limit reached.", "requests", "rate_limit_exceeded", **{"Retry-After": "3"}),
    ],
    ids=["500", "503", "429"],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_primary_falls_back_in_order(
    client: TestClient,
    headers: dict[str, str],
    caller: openai.OpenAI,
    upstream: FakeUpstream,
    failure: Any,
    stream: bool,
) -> None:
    # Given a deployment whose target and first fallback fail at the provider
    deploy(client, headers, targets=[{"model": FT_MODEL}], fallbacks=[CANARY, BASE])
    upstream.failing = {FT_MODEL: failure, CANARY: failure}

    # When it is asked
    raw = ask(caller, stream=stream)
    raw.parse()

    # Then the second fallback answered, after the target and the first fallback were tried
    assert raw.status_code == 200
    assert raw.headers["x-ftm-model"] == BASE
    tried = [call.body["model"] for call in upstream.calls("/v1/chat/completions") if call.body]
    assert tried == [FT_MODEL, CANARY, BASE]


@pytest.mark.usefixtures("models")
def test_when_every_fallback_fails_the_last_failure_is_relayed(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI, upstream: FakeUpstream
) -> None:
    deploy(client, headers, targets=[{"model": FT_MODEL}], fallbacks=[CANARY])
    upstream.fail_with = openai_error(503, "Overloaded.", "server_error", None)

    with pytest.raises(openai.InternalServerError) as raised:
        ask(caller)

    assert raised.value.status_code == 503
    assert raised.value.response.headers["x-ftm-model"] == CANARY
    assert raised.value.response.headers["x-ftm-deployment"] == "support-bot"


@pytest.mark.usefixtures("models")
def test_a_refusal_of_the_request_is_not_retried_elsewhere(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI, upstream: FakeUpstream
) -> None:
    # Given a deployment whose target refuses the request itself (a 400)
    deploy(client, headers, targets=[{"model": FT_MODEL}], fallbacks=[CANARY])
    upstream.failing = {FT_MODEL: openai_error(400, "Bad messages.", "invalid_request_error", None)}

    # When it is asked, then the 400 comes back and no fallback was tried
    with pytest.raises(openai.BadRequestError):
        ask(caller)
    assert len(upstream.calls("/v1/chat/completions")) == 1


@pytest.fixture
def unreachable_provider(runtime: Runtime) -> None:
    """A provider `down` that refuses connections, and a model `BROKEN` of acme living there
    (connections dropped mid-answer: tests/deployments/test_fallback_live.py)."""
    point_provider_at(runtime, "down", nothing_listening_url())
    add_fine_tuned_model(runtime, model=BROKEN)
    with session_scope(runtime.sessions) as session:
        row = session.get(FineTunedModelRow, BROKEN)
        assert row is not None
        row.provider = "down"


@pytest.mark.usefixtures("models", "unreachable_provider")
@pytest.mark.parametrize("stream", [False, True])
def test_a_dropped_connection_falls_back(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI, stream: bool
) -> None:
    # Given a deployment whose target's provider refuses every connection
    deploy(client, headers, targets=[{"model": BROKEN}], fallbacks=[FT_MODEL])

    # When it is asked
    raw = ask(caller, stream=stream)
    raw.parse()

    # Then the fallback answered
    assert (raw.status_code, raw.headers["x-ftm-model"]) == (200, FT_MODEL)


@pytest.mark.usefixtures("models")
def test_a_change_through_this_process_routes_the_next_request_by_the_new_version(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI
) -> None:
    # Given a deployment that has been called (so its route is cached)
    deploy(client, headers, targets=[{"model": FT_MODEL}])
    assert ask(caller).headers["x-ftm-model"] == FT_MODEL

    # When it is changed, then rolled back, then deleted
    client.post("/v1/deployments/support-bot", headers=headers, json={"targets": [{"model": CANARY}]})
    after_update = ask(caller).headers
    client.post("/v1/deployments/support-bot/rollback", headers=headers, json={"version": 1})
    after_rollback = ask(caller).headers
    client.delete("/v1/deployments/support-bot", headers=headers)

    # Then each next request followed at once
    assert (after_update["x-ftm-model"], after_update["x-ftm-deployment-version"]) == (CANARY, "2")
    assert (after_rollback["x-ftm-model"], after_rollback["x-ftm-deployment-version"]) == (FT_MODEL, "3")
    with pytest.raises(openai.NotFoundError) as raised:
        ask(caller)
    assert raised.value.code == "model_not_found"


@pytest.fixture
def deployment_queries(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "deployment" in statement or "fine_tuned_models" in statement:
            statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    yield statements
    event.remove(runtime.engine, "before_cursor_execute", record)


@pytest.mark.usefixtures("models")
def test_repeated_requests_for_a_deployment_read_the_database_once(
    client: TestClient, headers: dict[str, str], caller: openai.OpenAI, deployment_queries: list[str]
) -> None:
    # Given a deployment with a canary and a fallback
    deploy(client, headers, targets=[{"model": FT_MODEL, "weight": 9}, {"model": CANARY}], fallbacks=[BASE])
    ask(caller)
    deployment_queries.clear()

    # When it is called ten more times
    for _ in range(10):
        ask(caller)

    # Then no request read the database
    assert deployment_queries == []


def test_another_tenants_deployment_is_an_unknown_model(
    client: TestClient, runtime: Runtime, caller: openai.OpenAI
) -> None:
    # Given a deployment of another tenant
    theirs = bearer(make_key(runtime, "globex"))
    deploy(client, theirs, targets=[{"model": BASE}])

    # When this tenant names it, then it is not found
    with pytest.raises(openai.NotFoundError) as raised:
        ask(caller)
    assert raised.value.code == "model_not_found"
