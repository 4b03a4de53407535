"""The submit claim, backoff and giving up, one worker at a time, against the local provider."""

from __future__ import annotations

from datetime import timedelta

import httpx
import openai
import pytest
from sqlalchemy import select

from service.blobs.store import BlobNotFound
from service.clock import utcnow
from service.db import session_scope
from service.jobs import claims, refresh, submission
from service.jobs.access import PollPolicy, ProviderAccess, SubmitPolicy
from service.jobs.models import JobEventRow, JobRow
from service.jobs.submission import SubmitOutcome
from service.outbox.models import OutboxRow
from service.runtime import Runtime
from tests.jobs.conftest import upload

BASE = "gpt-4o-mini-2024-07-18"
POLICY = SubmitPolicy(lease=timedelta(seconds=30), max_attempts=3, backoff=timedelta(seconds=10))


def submit(runtime: Runtime, job_id: str, policy: SubmitPolicy = POLICY) -> SubmitOutcome:
    access = ProviderAccess(runtime.providers, runtime.blobs, PollPolicy.every(timedelta(0)), policy)
    return submission.submit(runtime.sessions, job_id, access)


def job_row(runtime: Runtime, job_id: str) -> JobRow:
    with session_scope(runtime.sessions) as session:
        job = session.get(JobRow, job_id)
        assert job is not None
        return job


def claim(runtime: Runtime, job_id: str, *, lease: timedelta) -> str:
    token = claims.new_token()
    with session_scope(runtime.sessions) as session:
        assert claims.claim_job(session, job_id, token=token, now=utcnow(), lease=lease)
    return token


def creates(emulator: httpx.Client) -> int:
    return int(emulator.get("/_emulator/stats").json().get("POST /v1/fine_tuning/jobs", 0))


def test_a_submit_that_finds_the_job_claimed_leaves_it_alone(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    claim(runtime, job.id, lease=timedelta(seconds=30))

    outcome = submit(runtime, job.id)

    assert outcome == SubmitOutcome.CLAIMED
    assert job_row(runtime, job.id).submit_attempts == 0
    assert creates(emulator) == 0
    assert "POST /v1/files" not in emulator.get("/_emulator/stats").json()


def test_the_claim_of_a_killed_worker_expires_and_the_next_submit_adopts_its_job(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    emulator.post(
        "/_emulator/faults", json={"drop_next": 1, "paths": ["/v1/fine_tuning/jobs"], "methods": ["POST"]}
    )
    assert submit(runtime, job.id) == SubmitOutcome.RETRY  # created, but the answer was lost
    claim(runtime, job.id, lease=timedelta(seconds=-1))  # a worker took it and died at once

    outcome = submit(runtime, job.id)

    assert outcome == SubmitOutcome.SUBMITTED
    assert creates(emulator) == 1
    assert job_row(runtime, job.id).submit_claim is None


def test_the_sweep_does_not_queue_a_job_whose_submit_is_claimed(sdk: openai.OpenAI, runtime: Runtime) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    claim(runtime, job.id, lease=timedelta(seconds=30))
    with session_scope(runtime.sessions) as session:
        session.get_one(JobRow, job.id).next_refresh_at = utcnow() - timedelta(seconds=1)

    with session_scope(runtime.sessions) as session:
        while_claimed = refresh.sweep(session)
    with session_scope(runtime.sessions) as session:
        after_the_lease = refresh.sweep(session, now=utcnow() + timedelta(seconds=31))
        queued = list(session.scalars(select(OutboxRow.kwargs).where(OutboxRow.task_name == "jobs.submit")))

    assert (while_claimed, after_the_lease) == (0, 1)
    assert queued == [{"job_id": job.id}, {"job_id": job.id}]  # the create's, then the sweep's


def test_a_failed_attempt_is_retried_after_a_backoff_that_honours_retry_after(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    emulator.post("/_emulator/faults", json={"rate_limit_next": 1, "retry_after_s": 120})
    before = utcnow()

    outcome = submit(runtime, job.id)

    row = job_row(runtime, job.id)
    assert outcome == SubmitOutcome.RETRY
    assert row.next_refresh_at is not None
    assert row.next_refresh_at >= before + timedelta(seconds=120)
    assert (row.status, row.submit_attempts, row.submit_claim) == ("validating_files", 1, None)
    with session_scope(runtime.sessions) as session:
        messages = session.scalars(select(JobEventRow.message).where(JobEventRow.job_id == job.id)).all()
    assert any("Submit attempt 1 failed" in message and "429" in message for message in messages)


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    policy = SubmitPolicy(backoff=timedelta(seconds=5), backoff_max=timedelta(seconds=60))

    delays = [policy.retry_delay(attempt).total_seconds() for attempt in range(1, 7)]

    for delay, nominal in zip(delays, [5, 10, 20, 40, 60, 60], strict=True):
        assert nominal * 0.8 <= delay <= nominal * 1.2


def test_a_job_the_provider_keeps_refusing_to_take_fails_after_the_last_attempt(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    emulator.post(
        "/_emulator/faults",
        json={
            "server_error_next": 100,
            "server_error_status": 503,
            "paths": ["/v1/fine_tuning/jobs"],
            "methods": ["POST"],
        },
    )

    outcomes = [submit(runtime, job.id) for _ in range(POLICY.max_attempts + 1)]

    failed = sdk.fine_tuning.jobs.retrieve(job.id)
    assert outcomes == [SubmitOutcome.RETRY] * POLICY.max_attempts + [SubmitOutcome.FAILED]
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.code == "submit_attempts_exhausted"
    assert "3 attempts" in failed.error.message
    assert "503" in failed.error.message
    assert submit(runtime, job.id) == SubmitOutcome.NOT_NEEDED


def test_a_job_whose_workers_keep_dying_fails_as_a_crash_loop(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    with session_scope(runtime.sessions) as session:
        session.get_one(JobRow, job.id).submit_attempts = POLICY.max_attempts  # each one killed mid-way

    outcome = submit(runtime, job.id)

    failed = sdk.fine_tuning.jobs.retrieve(job.id)
    assert outcome == SubmitOutcome.FAILED
    assert failed.error is not None
    assert failed.error.code == "worker_crash_loop"
    assert creates(emulator) == 0


def test_a_crash_loop_that_did_create_the_provider_job_adopts_it_instead_of_failing(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    emulator.post(
        "/_emulator/faults", json={"drop_next": 1, "paths": ["/v1/fine_tuning/jobs"], "methods": ["POST"]}
    )
    submit(runtime, job.id)
    with session_scope(runtime.sessions) as session:
        session.get_one(JobRow, job.id).submit_attempts = POLICY.max_attempts

    outcome = submit(runtime, job.id)

    assert outcome == SubmitOutcome.SUBMITTED
    assert creates(emulator) == 1
    assert sdk.fine_tuning.jobs.retrieve(job.id).status != "failed"


def test_an_internal_error_counts_as_an_attempt_and_releases_the_claim(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    for blob in list(runtime.blobs.list_blobs()):
        runtime.blobs.delete(blob.key)  # the file's body is gone from the blob store

    with pytest.raises(BlobNotFound):
        submit(runtime, job.id)

    row = job_row(runtime, job.id)
    assert (row.submit_attempts, row.submit_claim, row.status) == (1, None, "validating_files")
    assert row.provider_state is not None
    assert "BlobNotFound" in row.provider_state["last_submit_error"]


def test_an_upload_whose_answer_was_lost_is_found_at_the_provider_not_repeated(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    emulator.post("/_emulator/faults", json={"drop_next": 1, "paths": ["/v1/files"], "methods": ["POST"]})

    outcomes = [submit(runtime, job.id), submit(runtime, job.id)]

    stats = emulator.get("/_emulator/stats").json()
    assert outcomes == [SubmitOutcome.RETRY, SubmitOutcome.SUBMITTED]
    assert stats["POST /v1/files"] == 1
    assert creates(emulator) == 1
