"""Every route of the OpenAPI document, called by one tenant with another tenant's ids (taken from
objects that tenant created), answers exactly as for an id that does not exist: a 404. Lists never
show the other tenant's objects. A new route is covered without anyone remembering to: a path
parameter this test cannot fill fails it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from service.auth.keys import Scope
from service.config import Settings
from service.db import session_scope
from service.models.service import register_fine_tuned_model
from service.runtime import Runtime
from service.webhooks.models import WebhookDeliveryRow
from service.webhooks.service import emit_event
from tests.conftest import bearer, make_key
from tests.factories import jonny_dataset

BASE = "gpt-4o-mini-2024-07-18"
# Bodies a route needs so that its request is valid and only ownership decides the answer.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/webhook_endpoints/{webhook_endpoint_id}"): {"name": "renamed"},
    ("post", "/v1/webhook_endpoints/{webhook_endpoint_id}/test"): {"event_type": "fine_tuning.job.succeeded"},
    ("post", "/v1/webhook_endpoints/{webhook_endpoint_id}/redeliver"): {"failed_since": 0},
    ("post", "/v1/deployments/{deployment}"): {"fallbacks": []},
    ("post", "/v1/deployments/{deployment}/rollback"): {"version": 1},
    ("post", "/v1/uploads/{upload_id}/complete"): {"part_ids": ["part_any"]},
    ("post", "/v1/files/{file_id}/preparations"): {"user_column": "question", "assistant_column": "answer"},
    ("post", "/v1/api_keys/{key_id}"): {"requests_per_minute": 1},
    ("post", "/v1/tenants/{name}"): {"personal_data_policy": "warn"},
    ("put", "/v1/tenants/{name}/providers/{provider}/credentials"): {"api_key": "sk-mine-not-theirs-0000"},
    ("post", "/v1/evals/{eval_id}"): {"name": "renamed"},
    ("post", "/v1/evals/{eval_id}/runs"): {
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": [{"item": {}}]}}
    },
}
MISSING = {
    "file_id": "file-doesnotexist00000000000",
    "job_id": "ftjob-doesnotexist000000000000",
    "webhook_endpoint_id": "we_doesnotexist0000000000000",
    "delivery_id": "whdel_doesnotexist0000000000",
    "model": "ft:gpt-4o-mini-2024-07-18:nobody:gone:000000",
    "key_id": "key_doesnotexist00000000000",
    "deployment": "no-such-deployment",
    "upload_id": "upload_doesnotexist000000000",
    "preparation_id": "prep-doesnotexist000000000000",
    "name": "no-such-tenant",
    "provider": "local",
    "eval_id": "eval_doesnotexist0000000000000",
    "run_id": "evalrun_doesnotexist000000000000",
    "other_run_id": "evalrun_doesnotexist000000000001",
    "output_item_id": "outputitem_doesnotexist00000000000000000",
}


@dataclass(frozen=True)
class Theirs:
    """The other tenant's objects, by the path parameter that names each."""

    ids: dict[str, str]


def their_objects(client: TestClient, runtime: Runtime) -> Theirs:
    key = make_key(runtime, "theirs", frozenset({Scope.ADMIN}))
    headers = bearer(key)
    file_id = client.post(
        "/v1/files",
        headers=headers,
        files={"file": ("theirs.jsonl", io.BytesIO(jonny_dataset()))},
        data={"purpose": "fine-tune"},
    ).json()["id"]
    job_id = client.post(
        "/v1/fine_tuning/jobs", headers=headers, json={"model": BASE, "training_file": file_id}
    ).json()["id"]
    endpoint_id = client.post(
        "/v1/webhook_endpoints",
        headers=headers,
        json={
            "name": "theirs",
            "url": "http://127.0.0.1:9/hooks",
            "event_types": ["fine_tuning.job.succeeded"],
        },
    ).json()["id"]
    model = f"ft:{BASE}:theirs:secret:abc123"
    me = client.get("/v1/me", headers=headers).json()
    with session_scope(runtime.sessions) as session:
        register_fine_tuned_model(
            session, model=model, tenant_id=me["tenant_id"], provider="local", base_model=BASE, job_id=job_id
        )
        event = emit_event(
            session, tenant_id=me["tenant_id"], type="fine_tuning.job.succeeded", data_id=job_id
        )
        delivery_id = session.scalars(
            select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.event_id == event.id)
        ).one()
    deployment = client.post(
        "/v1/deployments",
        headers=headers,
        json={"name": "theirs-bot", "targets": [{"model": model}], "fallbacks": [BASE]},
    ).json()["name"]
    upload_id = client.post(
        "/v1/uploads",
        headers=headers,
        json={
            "bytes": 10,
            "filename": "theirs.jsonl",
            "mime_type": "application/jsonl",
            "purpose": "fine-tune",
        },
    ).json()["id"]
    source_id = client.post(
        "/v1/files",
        headers=headers,
        files={"file": ("theirs.csv", io.BytesIO(b"question,answer\nWho?,Jonny.\n"))},
        data={"purpose": "user_data"},
    ).json()["id"]
    preparation_id = client.post(
        f"/v1/files/{source_id}/preparations",
        headers=headers,
        json={"user_column": "question", "assistant_column": "answer"},
    ).json()["id"]
    eval_id = client.post(
        "/v1/evals",
        headers=headers,
        json={
            "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
            "testing_criteria": [
                {"type": "string_check", "name": "s", "input": "a", "reference": "a", "operation": "eq"}
            ],
        },
    ).json()["id"]
    source = {"type": "jsonl", "source": {"type": "file_content", "content": [{"item": {"q": "secret"}}]}}
    run_ids = [
        client.post(f"/v1/evals/{eval_id}/runs", headers=headers, json={"data_source": source}).json()["id"]
        for _ in range(2)
    ]
    item_id = client.get(f"/v1/evals/{eval_id}/runs/{run_ids[0]}/output_items", headers=headers).json()[
        "data"
    ][0]["id"]
    ids = {
        "upload_id": upload_id,
        "eval_id": eval_id,
        "run_id": run_ids[0],
        "other_run_id": run_ids[1],
        "output_item_id": item_id,
        "file_id": file_id,
        "preparation_id": preparation_id,
        "job_id": job_id,
        "webhook_endpoint_id": endpoint_id,
        "delivery_id": delivery_id,
        "model": model,
        "deployment": deployment,
    }
    client.put(
        "/v1/tenants/theirs/providers/local/credentials",
        headers=headers,
        json={"api_key": "sk-theirs-own-1234"},
    ).raise_for_status()
    return Theirs({**ids, "key_id": me["key_id"], "name": me["tenant"], "provider": "local"})


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
    ]


def fill(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no object of the other tenant fills a parameter of {path}: add one"
    return path


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.credentials_key = SecretStr(Fernet.generate_key().decode())  # so theirs can set credentials
    return settings


@pytest.fixture
def mine(runtime: Runtime) -> dict[str, str]:
    return bearer(make_key(runtime, "mine", frozenset({Scope.ADMIN})))


def test_another_tenants_object_is_the_same_404_as_a_missing_one_on_every_route(
    app: FastAPI, client: TestClient, runtime: Runtime, mine: dict[str, str]
) -> None:
    theirs = their_objects(client, runtime)
    checked = []

    for method, path, _ in operations(app):
        if "{" not in path or not path.startswith("/v1/"):  # outside /v1 nothing is a tenant's
            continue
        body = BODIES.get((method, path))
        answer = client.request(method, fill(path, theirs.ids), headers=mine, json=body)
        missing = client.request(method, fill(path, MISSING), headers=mine, json=body)

        assert answer.status_code == 404, f"{method.upper()} {path}: {answer.status_code} {answer.text}"
        expected = missing.text
        for name, their_id in theirs.ids.items():
            expected = expected.replace(MISSING[name], their_id)
        assert answer.text == expected, f"{method.upper()} {path}"
        checked.append((method, path))

    assert len(checked) >= 15


def test_no_list_shows_another_tenants_objects(
    app: FastAPI, client: TestClient, runtime: Runtime, mine: dict[str, str]
) -> None:
    theirs = their_objects(client, runtime)

    for method, path, _ in operations(app):
        if method != "get" or "{" in path or not path.startswith("/v1/"):
            continue
        answer = client.get(path, headers=mine)

        assert answer.status_code in (200, 403), f"GET {path}: {answer.status_code}"  # 403: not a tenant's
        for their_id in theirs.ids.values():
            assert their_id not in answer.text, f"GET {path} shows {their_id}"


def test_naming_another_tenants_model_in_a_body_is_a_404(
    app: FastAPI, client: TestClient, runtime: Runtime, mine: dict[str, str]
) -> None:
    theirs = their_objects(client, runtime)
    checked = []

    for method, path, operation in operations(app):
        schema = (
            operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        )
        if "$ref" in schema:
            schema = app.openapi()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        if "{" in path or "model" not in schema.get("properties", {}):
            continue
        candidates = {
            "model": theirs.ids["model"],
            "messages": [{"role": "user", "content": "hi"}],
            "prompt": "hi",
            "training_file": theirs.ids["file_id"],
        }
        body = {name: value for name, value in candidates.items() if name in schema["properties"]}
        answer = client.request(method, path, headers=mine, json=body)

        assert answer.status_code == 404, f"{method.upper()} {path}: {answer.status_code} {answer.text}"
        assert answer.json()["error"]["code"] == "model_not_found"
        checked.append(path)

    assert sorted(checked) == [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/fine_tuning/estimates",
        "/v1/fine_tuning/jobs",
    ]
