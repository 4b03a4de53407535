"""The service's own events, each recorded with the change that causes it: a file validated, a
job entering `running`, a deployment changed or deleted."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.clock import utcnow
from service.db import session_scope
from service.files import service as files
from service.jobs.models import JobRow
from service.jobs.states import Status
from service.jobs.transitions import transition
from service.runtime import Runtime
from service.webhooks.models import WebhookDeliveryRow, WebhookEventRow
from tests.conftest import bearer
from tests.factories import jonny_dataset
from tests.proxy.fakes import FT_MODEL, add_fine_tuned_model

ALL = [
    "file.processed",
    "file.failed",
    "fine_tuning.job.running",
    "deployment.updated",
    "deployment.deleted",
]


def _subscribe(client: TestClient, key: str) -> str:
    answer = client.post(
        "/v1/webhook_endpoints",
        headers=bearer(key),
        json={"name": "all", "url": "http://127.0.0.1:9/hooks", "event_types": ALL},
    )
    assert answer.status_code == 200, answer.text
    endpoint_id: str = answer.json()["id"]
    return endpoint_id


def _events(runtime: Runtime) -> list[tuple[str, str]]:
    with session_scope(runtime.sessions) as session:
        rows = session.execute(
            select(WebhookEventRow.type, WebhookEventRow.data).order_by(WebhookEventRow.created_at)
        )
        return [(type, data["id"]) for type, data in rows]


def _upload(client: TestClient, key: str, body: bytes) -> str:
    answer = client.post(
        "/v1/files",
        headers=bearer(key),
        files={"file": ("data.jsonl", io.BytesIO(body))},
        data={"purpose": "fine-tune"},
    )
    file_id: str = answer.json()["id"]
    return file_id


def test_a_validated_file_emits_processed_or_failed(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    endpoint_id = _subscribe(client, tenant_key)
    good = _upload(client, tenant_key, jonny_dataset())
    bad = _upload(client, tenant_key, b"not json\n")

    for file_id in (good, bad):
        files.validate_file(runtime.sessions, runtime.blobs, file_id)

    assert ("file.processed", good) in _events(runtime)
    assert ("file.failed", bad) in _events(runtime)
    with session_scope(runtime.sessions) as session:
        assert {d.endpoint_id for d in session.scalars(select(WebhookDeliveryRow))} == {endpoint_id}


def test_a_job_entering_running_emits_running_and_a_rolled_back_transition_emits_nothing(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    _subscribe(client, tenant_key)
    tenant_id = client.get("/v1/me", headers=bearer(tenant_key)).json()["tenant_id"]
    now = utcnow()
    with session_scope(runtime.sessions) as session:
        session.add(
            JobRow(
                id="ftjob-running1",
                tenant_id=tenant_id,
                provider="local",
                model="gpt-4o-mini-2024-07-18",
                training_file="file-x",
                hyperparameters={},
                seed=1,
                status=Status.QUEUED.value,
                result_files=[],
                created_at=now,
                updated_at=now,
                submit_attempts=0,
            )
        )

    session = runtime.sessions()
    job = session.get(JobRow, "ftjob-running1")
    assert job is not None
    transition(session, job, Status.RUNNING)
    session.rollback()
    session.close()
    assert _events(runtime) == []

    with session_scope(runtime.sessions) as session:
        job = session.get(JobRow, "ftjob-running1")
        assert job is not None
        transition(session, job, Status.RUNNING)

    assert _events(runtime) == [("fine_tuning.job.running", "ftjob-running1")]


def test_creating_changing_and_deleting_a_deployment_emit_updated_and_deleted(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    add_fine_tuned_model(runtime)
    _subscribe(client, tenant_key)
    headers = bearer(tenant_key)
    body: dict[str, Any] = {"name": "support-bot", "targets": [{"model": FT_MODEL, "weight": 100}]}

    assert client.post("/v1/deployments", headers=headers, json=body).status_code == 200
    assert (
        client.post("/v1/deployments/support-bot", headers=headers, json={"fallbacks": []}).status_code == 200
    )
    assert client.delete("/v1/deployments/support-bot", headers=headers).status_code == 200

    assert _events(runtime) == [
        ("deployment.updated", "support-bot"),
        ("deployment.updated", "support-bot"),
        ("deployment.deleted", "support-bot"),
    ]


@pytest.mark.parametrize("event_type", ALL)
def test_every_new_event_can_be_subscribed_to_and_sent_as_a_test(
    client: TestClient, tenant_key: str, event_type: str
) -> None:
    endpoint_id = _subscribe(client, tenant_key)

    answer = client.post(
        f"/v1/webhook_endpoints/{endpoint_id}/test",
        headers=bearer(tenant_key),
        json={"event_type": event_type},
    )

    assert answer.status_code == 400  # nothing listens on port 9: the request itself was made
    assert answer.json()["error"]["code"] == "webhook_test_failed"
