"""A provider's webhook makes its job due for a refresh at once; polling can then be slow.

The signed deliveries are made with the service's own Standard Webhooks signer (the one the
SDK's `unwrap` verifies), and end to end by the local provider itself when its jobs end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from emulator.app import create_app as create_emulator
from emulator.settings import EmulatorSettings
from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.jobs.access import PollPolicy
from service.jobs.models import JobRow
from service.jobs.provider_webhooks import forget_old
from service.outbox.models import OutboxRow
from service.runtime import Runtime
from service.tasks import TaskName
from service.webhooks.signing import generate_secret, webhook_headers
from tests.conftest import sdk_for
from tests.jobs.conftest import follow, submit, upload
from tests.servers import serve

SECRET = generate_secret()
BASE = "gpt-4o-mini-2024-07-18"
ROUTE = "/providers/local/webhooks"


@pytest.fixture(scope="module")
def emulator_settings(tmp_path_factory: pytest.TempPathFactory) -> EmulatorSettings:
    return EmulatorSettings(
        data_dir=tmp_path_factory.mktemp("emulator"),
        api_key="sk-local",
        seconds_per_step=0.005,
        tick_seconds=0.02,
        webhook_secret=SECRET,
    )


@pytest.fixture(scope="module")
def emulator_url(emulator_settings: EmulatorSettings) -> Iterator[str]:
    with serve(create_emulator(emulator_settings)) as url:
        yield f"{url}/v1"


@pytest.fixture
def settings(settings: Settings, emulator_url: str) -> Settings:
    settings.local_provider_base_url = emulator_url
    settings.local_provider_webhook_secret = SecretStr(SECRET)
    # Polling alone would look again only after minutes.
    settings.job_refresh_interval_s = 300.0
    settings.job_poll_queued_s = 300.0
    return settings


def delivery(
    event_type: str, job_id: str, *, webhook_id: str = "evt_1", secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "id": webhook_id,
            "object": "event",
            "type": event_type,
            "created_at": int(time.time()),
            "data": {"id": job_id},
        }
    ).encode()
    headers = webhook_headers(msg_id=webhook_id, timestamp=int(time.time()), body=body, secrets=[secret])
    return body, {**headers, "content-type": "application/json"}


def refreshes_queued(runtime: Runtime, job_id: str) -> int:
    with session_scope(runtime.sessions) as session:
        rows = session.scalars(select(OutboxRow).where(OutboxRow.task_name == TaskName.JOBS_REFRESH.value))
        return sum(1 for row in rows if row.kwargs.get("job_id") == job_id)


@pytest.fixture
def running_job(client: TestClient, runtime: Runtime, tenant_key: str) -> JobRow:
    """A job submitted to the local provider, its next poll minutes away."""
    sdk = sdk_for(client, tenant_key)
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    assert submit(runtime, job.id).value == "submitted"
    with session_scope(runtime.sessions) as session:
        row = session.get_one(JobRow, job.id)
        row.next_refresh_at = utcnow() + timedelta(minutes=5)
        return row


def test_a_signed_webhook_makes_its_job_due_now_and_a_retry_of_it_is_ignored(
    client: TestClient, runtime: Runtime, running_job: JobRow
) -> None:
    assert running_job.provider_job_id is not None
    body, headers = delivery("fine_tuning.job.succeeded", running_job.provider_job_id)

    first = client.post(ROUTE, content=body, headers=headers)
    again = client.post(ROUTE, content=body, headers=headers)

    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "outcome": "refreshing"}
    assert again.json()["outcome"] == "duplicate"
    assert refreshes_queued(runtime, running_job.id) == 1
    with session_scope(runtime.sessions) as session:
        due = session.get_one(JobRow, running_job.id).next_refresh_at
        assert due is not None
        assert due <= utcnow()


def test_the_sdk_verifies_what_the_route_accepts(running_job: JobRow) -> None:
    assert running_job.provider_job_id is not None
    body, headers = delivery("fine_tuning.job.failed", running_job.provider_job_id)
    event = openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9").webhooks.unwrap(
        body, headers, secret=SECRET
    )
    assert event.type == "fine_tuning.job.failed"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body.replace(b"succeeded", b"failed"), headers),
        lambda body, headers: (body, {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}),
        lambda body, headers: (body, {k: v for k, v in headers.items() if k != "webhook-signature"}),
        lambda body, headers: delivery("fine_tuning.job.succeeded", "ftjob-x", secret=generate_secret()),
    ],
    ids=["body changed", "stale", "unsigned", "other secret"],
)
def test_a_webhook_that_does_not_verify_is_a_400_and_changes_nothing(
    client: TestClient, runtime: Runtime, running_job: JobRow, tamper: object
) -> None:
    assert running_job.provider_job_id is not None
    body, headers = delivery("fine_tuning.job.succeeded", running_job.provider_job_id)
    body, headers = tamper(body, headers)  # type: ignore[operator]

    refused = client.post(ROUTE, content=body, headers=headers)

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "webhook-signature"
    assert refreshes_queued(runtime, running_job.id) == 0


def test_webhooks_about_other_things_are_acknowledged_and_ignored(
    client: TestClient, running_job: JobRow
) -> None:
    unknown_job = client.post(
        ROUTE, content=(d := delivery("fine_tuning.job.succeeded", "ftjob-nobody"))[0], headers=d[1]
    )
    other_event = client.post(
        ROUTE, content=(d := delivery("batch.completed", "batch_1", webhook_id="evt_2"))[0], headers=d[1]
    )
    assert unknown_job.json()["outcome"] == other_event.json()["outcome"] == "ignored"


def test_a_provider_without_a_webhook_secret_takes_none(client: TestClient) -> None:
    body, headers = delivery("fine_tuning.job.succeeded", "ftjob-x")
    refused = client.post("/providers/openai/webhooks", content=body, headers=headers)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "provider_webhooks_off"


def test_webhook_ids_are_forgotten_after_a_week(
    client: TestClient, runtime: Runtime, running_job: JobRow
) -> None:
    assert running_job.provider_job_id is not None
    body, headers = delivery("fine_tuning.job.succeeded", running_job.provider_job_id)
    client.post(ROUTE, content=body, headers=headers)
    with session_scope(runtime.sessions) as session:
        assert forget_old(session) == 0
        assert forget_old(session, now=utcnow() + timedelta(days=7, seconds=1)) == 1


def test_the_local_provider_tells_the_service_when_a_job_ends(
    app: FastAPI, runtime: Runtime, tenant_key: str, emulator_settings: EmulatorSettings
) -> None:
    with serve(app) as base_url:
        emulator_settings.webhook_url = f"{base_url}{ROUTE}"
        try:
            sdk = openai.OpenAI(api_key=tenant_key, base_url=f"{base_url}/v1", max_retries=0)
            job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
            assert submit(runtime, job.id).value == "submitted"
            deadline = time.monotonic() + 20
            while refreshes_queued(runtime, job.id) == 0:  # the submit queued none: the webhook did
                assert time.monotonic() < deadline, "no webhook arrived"
                time.sleep(0.05)
        finally:
            emulator_settings.webhook_url = None
    done = follow(runtime, job.id, timeout_s=5)
    assert done.status == "succeeded"


def test_a_quiet_job_is_polled_less_and_less_often(runtime: Runtime) -> None:
    polls = PollPolicy(
        running=timedelta(seconds=10), queued=timedelta(seconds=60), longest=timedelta(minutes=10)
    )
    assert polls.delay(running=True, quiet_polls=0) == timedelta(seconds=10)
    assert polls.delay(running=True, quiet_polls=2) == timedelta(seconds=40)
    assert polls.delay(running=False, quiet_polls=0) == timedelta(seconds=60)
    assert polls.delay(running=False, quiet_polls=30) == timedelta(minutes=10)
