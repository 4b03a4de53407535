"""Cancel racing a worker's refresh of the same job (on PostgreSQL in CI): the request's short
transaction loses its version check, is applied again on the fresh row, and the answer and the
final state agree; a conflict that never ends is a 409, never a 500."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from service.db import session_scope
from service.jobs import refresh, submission
from service.jobs.models import JobEventRow, JobRow
from service.runtime import Runtime
from service.webhooks.models import WebhookEventRow
from tests.conftest import bearer
from tests.jobs.conftest import access, upload

BASE = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def slow_training(emulator: httpx.Client) -> Iterator[None]:
    emulator.post("/_emulator/faults", json={"seconds_per_step": 5})
    yield
    emulator.post("/_emulator/faults", json={"seconds_per_step": 0.005})


def running_job(sdk: openai.OpenAI, runtime: Runtime) -> str:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    assert submission.submit(runtime.sessions, job.id, access(runtime)) == "submitted"
    refresh.refresh(runtime.sessions, job.id, access(runtime))
    return job.id


def a_refresh_commits_first(runtime: Runtime, job_id: str, *, times: int) -> Callable[[], int]:
    """Make the next `times` flushes that write this job lose to a refresh that commits first
    (the refresh's version bump lands between the request's read and its write)."""
    fired = 0

    def before_flush(session: Session, *_: object) -> None:
        nonlocal fired
        if fired < times and any(isinstance(row, JobRow) and row.id == job_id for row in session.dirty):
            fired += 1
            with runtime.engine.begin() as connection:
                connection.execute(
                    update(JobRow).where(JobRow.id == job_id).values(version=JobRow.version + 1)
                )

    event.listen(runtime.sessions, "before_flush", before_flush)
    return lambda: fired


def cancelled_webhooks(runtime: Runtime, job_id: str) -> int:
    with session_scope(runtime.sessions) as session:
        rows = session.scalars(
            select(WebhookEventRow).where(WebhookEventRow.type == "fine_tuning.job.cancelled")
        )
        return sum(1 for row in rows if row.data["id"] == job_id)


def test_a_cancel_that_loses_to_a_refresh_is_applied_again_and_answers_cancelled(
    sdk: openai.OpenAI, runtime: Runtime, slow_training: None
) -> None:
    job_id = running_job(sdk, runtime)
    conflicts = a_refresh_commits_first(runtime, job_id, times=1)

    cancelled = sdk.fine_tuning.jobs.cancel(job_id)

    assert conflicts() == 1
    assert cancelled.status == "cancelled"
    assert sdk.fine_tuning.jobs.retrieve(job_id).status == "cancelled"
    assert cancelled_webhooks(runtime, job_id) == 1
    with session_scope(runtime.sessions) as session:
        provider_events = session.scalars(
            select(JobEventRow.provider_event_id).where(
                JobEventRow.job_id == job_id, JobEventRow.provider_event_id.is_not(None)
            )
        ).all()
    assert len(provider_events) == len(set(provider_events))


def test_a_cancel_that_keeps_losing_is_a_409_and_the_next_refresh_records_it(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str, slow_training: None
) -> None:
    job_id = running_job(sdk, runtime)
    a_refresh_commits_first(runtime, job_id, times=3)

    answer = client.post(f"/v1/fine_tuning/jobs/{job_id}/cancel", headers=bearer(tenant_key))
    while_conflicting = sdk.fine_tuning.jobs.retrieve(job_id).status
    refresh.refresh(runtime.sessions, job_id, access(runtime))

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "job_changed"
    assert while_conflicting != "cancelled"
    assert sdk.fine_tuning.jobs.retrieve(job_id).status == "cancelled"
    assert cancelled_webhooks(runtime, job_id) == 1


def test_cancels_racing_refresh_loops_always_answer_and_end_cancelled(
    sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str, slow_training: None
) -> None:
    jobs = [running_job(sdk, runtime) for _ in range(4)]
    answers: dict[str, int] = {}

    def refresh_until_answered(job_id: str) -> None:
        while job_id not in answers:
            refresh.refresh(runtime.sessions, job_id, access(runtime))

    for job_id in jobs:
        refresher = threading.Thread(target=refresh_until_answered, args=(job_id,))
        refresher.start()
        answers[job_id] = client.post(
            f"/v1/fine_tuning/jobs/{job_id}/cancel", headers=bearer(tenant_key)
        ).status_code
        refresher.join(30)
        refresh.refresh(runtime.sessions, job_id, access(runtime))

    assert set(answers.values()) <= {200, 409}
    assert {sdk.fine_tuning.jobs.retrieve(job_id).status for job_id in jobs} == {"cancelled"}
    assert [cancelled_webhooks(runtime, job_id) for job_id in jobs] == [1] * len(jobs)
