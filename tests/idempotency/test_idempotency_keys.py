"""`Idempotency-Key` on every create: a retry returns what the first request made and creates
nothing; a key reused for another request is a 409; keys are per tenant and kept a day."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import httpx2
import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from service.clock import utcnow
from service.db import session_scope
from service.deployments.models import DeploymentRow
from service.files.models import FileRow
from service.idempotency.models import IdempotencyKeyRow
from service.idempotency.service import purge_expired
from service.jobs.models import JobRow
from service.runtime import Runtime
from service.webhooks.models import WebhookEndpointRow
from tests.conftest import bearer, make_key
from tests.factories import jonny_dataset
from tests.jobs.conftest import sdk, upload
from tests.servers import serve

__all__ = ["sdk"]

BASE = "gpt-4o-mini-2024-07-18"


def count(runtime: Runtime, row: type[Any]) -> int:
    with session_scope(runtime.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(row)) or 0)


def keyed(key: str, tenant_key: str) -> dict[str, str]:
    return {**bearer(tenant_key), "Idempotency-Key": key}


@pytest.fixture
def training_file(sdk: openai.OpenAI, runtime: Runtime) -> str:
    return upload(sdk, runtime)


def test_a_retried_job_create_returns_the_first_job_and_creates_no_other(
    client: TestClient, runtime: Runtime, tenant_key: str, training_file: str
) -> None:
    body = {"model": BASE, "training_file": training_file, "suffix": "jonny"}
    first = client.post("/v1/fine_tuning/jobs", json=body, headers=keyed("job-1", tenant_key))
    again = client.post("/v1/fine_tuning/jobs", json=body, headers=keyed("job-1", tenant_key))

    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert count(runtime, JobRow) == 1
    # Through the SDK too (its extra_headers), and a new key is a new job.
    sdk_client = openai.OpenAI(api_key=tenant_key, base_url=f"{client.base_url}/v1", http_client=client)
    replayed = sdk_client.fine_tuning.jobs.create(
        model=BASE, training_file=training_file, suffix="jonny", extra_headers={"Idempotency-Key": "job-1"}
    )
    assert replayed.id == first.json()["id"]
    other = sdk_client.fine_tuning.jobs.create(
        model=BASE, training_file=training_file, suffix="jonny", extra_headers={"Idempotency-Key": "job-2"}
    )
    assert other.id != first.json()["id"]
    assert count(runtime, JobRow) == 2


def test_a_key_reused_for_other_parameters_or_another_route_is_a_409_that_changes_nothing(
    client: TestClient, runtime: Runtime, tenant_key: str, training_file: str
) -> None:
    body = {"model": BASE, "training_file": training_file}
    assert client.post("/v1/fine_tuning/jobs", json=body, headers=keyed("k", tenant_key)).status_code == 200

    changed = client.post(
        "/v1/fine_tuning/jobs", json={**body, "suffix": "other"}, headers=keyed("k", tenant_key)
    )
    elsewhere = client.post(
        "/v1/deployments", json={"name": "bot", "targets": [{"model": BASE}]}, headers=keyed("k", tenant_key)
    )

    for refused in (changed, elsewhere):
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "idempotency_key_reused"
        assert refused.json()["error"]["param"] == "Idempotency-Key"
    assert count(runtime, JobRow) == 1
    assert count(runtime, DeploymentRow) == 0


def test_the_same_parameters_in_another_key_order_are_the_same_request(
    client: TestClient, runtime: Runtime, tenant_key: str, training_file: str
) -> None:
    first = client.post(
        "/v1/fine_tuning/jobs",
        content=f'{{"model": "{BASE}", "training_file": "{training_file}"}}',
        headers={**keyed("order", tenant_key), "Content-Type": "application/json"},
    )
    again = client.post(
        "/v1/fine_tuning/jobs",
        content=f'{{"training_file":"{training_file}","model":"{BASE}"}}',
        headers={**keyed("order", tenant_key), "Content-Type": "application/json"},
    )
    assert again.json()["id"] == first.json()["id"]


def test_keys_belong_to_a_tenant(client: TestClient, runtime: Runtime, tenant_key: str) -> None:
    other_tenant = make_key(runtime, tenant="globex")
    body = {"name": "bot", "targets": [{"model": BASE}]}
    ours = client.post("/v1/deployments", json=body, headers=keyed("same", tenant_key))
    theirs = client.post("/v1/deployments", json=body, headers=keyed("same", other_tenant))
    assert ours.status_code == theirs.status_code == 200
    assert ours.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


def test_a_failed_create_leaves_no_claim(client: TestClient, runtime: Runtime, tenant_key: str) -> None:
    refused = client.post(
        "/v1/deployments",
        json={"name": "bot", "targets": [{"model": "no-such-model"}]},
        headers=keyed("x", tenant_key),
    )
    assert refused.status_code == 400
    created = client.post(
        "/v1/deployments", json={"name": "bot", "targets": [{"model": BASE}]}, headers=keyed("x", tenant_key)
    )
    assert created.status_code == 200, created.text
    assert "idempotent-replayed" not in created.headers


def test_a_key_is_kept_for_a_day(client: TestClient, runtime: Runtime, tenant_key: str) -> None:
    body = {"name": "bot", "targets": [{"model": BASE}]}
    first = client.post("/v1/deployments", json=body, headers=keyed("day", tenant_key)).json()
    with session_scope(runtime.sessions) as session:
        session.execute(update(IdempotencyKeyRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    client.delete("/v1/deployments/bot", headers=bearer(tenant_key))

    again = client.post("/v1/deployments", json=body, headers=keyed("day", tenant_key))

    assert again.status_code == 200, again.text
    assert again.json()["id"] != first["id"]
    assert "idempotent-replayed" not in again.headers
    with session_scope(runtime.sessions) as session:
        assert purge_expired(session, now=utcnow() + timedelta(days=1, seconds=1)) == 1


def test_a_replay_of_a_deleted_object_says_so(client: TestClient, tenant_key: str) -> None:
    body = {"name": "bot", "targets": [{"model": BASE}]}
    client.post("/v1/deployments", json=body, headers=keyed("gone", tenant_key))
    client.delete("/v1/deployments/bot", headers=bearer(tenant_key))

    again = client.post("/v1/deployments", json=body, headers=keyed("gone", tenant_key))

    assert again.status_code == 404
    assert again.json()["error"]["code"] == "idempotency_object_deleted"


def test_a_retried_upload_returns_the_first_file_and_keeps_one_body(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    def post(content: bytes) -> httpx2.Response:
        return client.post(
            "/v1/files",
            files={"file": ("train.jsonl", io.BytesIO(content))},
            data={"purpose": "fine-tune"},
            headers=keyed("upload", tenant_key),
        )

    first = post(jonny_dataset())
    again = post(jonny_dataset())
    other_bytes = post(jonny_dataset() + b'{"messages": [{"role": "user", "content": "x"}]}\n')

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert other_bytes.status_code == 409
    assert count(runtime, FileRow) == 1
    assert sorted(blob.key for blob in runtime.blobs.list_blobs()) == [first.json()["id"]]


def test_a_retried_webhook_endpoint_create_returns_the_same_endpoint_and_secret(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    body = {"name": "ops", "url": "http://127.0.0.1:9/ftm", "event_types": ["fine_tuning.job.succeeded"]}
    first = client.post("/v1/webhook_endpoints", json=body, headers=keyed("hook", tenant_key))
    again = client.post("/v1/webhook_endpoints", json=body, headers=keyed("hook", tenant_key))
    assert first.status_code == 200, first.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["signing_secret"] == first.json()["signing_secret"]
    assert count(runtime, WebhookEndpointRow) == 1


@pytest.mark.parametrize("key", ["", " padded ", "x" * 256, "tab\there"])
def test_an_unusable_key_is_a_400_naming_the_header(client: TestClient, tenant_key: str, key: str) -> None:
    refused = client.post(
        "/v1/deployments", json={"name": "bot", "targets": [{"model": BASE}]}, headers=keyed(key, tenant_key)
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "Idempotency-Key"


def test_concurrent_creates_with_one_key_create_one_object(
    app: FastAPI, client: TestClient, runtime: Runtime, tenant_key: str, training_file: str
) -> None:
    body = {"model": BASE, "training_file": training_file}
    racers = 6
    with serve(app) as base_url:
        barrier = threading.Barrier(racers)

        def create(_: int) -> httpx.Response:
            with httpx.Client(base_url=base_url, timeout=30) as http:
                barrier.wait()
                return http.post("/v1/fine_tuning/jobs", json=body, headers=keyed("race", tenant_key))

        def settle(response: httpx.Response) -> str:
            # SQLite cannot wait for a concurrent claim inside a transaction: a 409 in_use, retried.
            retry: Callable[[], httpx.Response] = lambda: httpx.post(  # noqa: E731
                f"{base_url}/v1/fine_tuning/jobs", json=body, headers=keyed("race", tenant_key), timeout=30
            )
            while (
                response.status_code == 409 and response.json()["error"]["code"] == "idempotency_key_in_use"
            ):
                response = retry()
            assert response.status_code == 200, response.text
            return str(response.json()["id"])

        with ThreadPoolExecutor(racers) as pool:
            responses = list(pool.map(create, range(racers)))
        ids = {settle(response) for response in responses}

    assert len(ids) == 1
    assert count(runtime, JobRow) == 1
