"""A provider in trouble delays a job and harms nothing: 429s and 5xx while following a job back
off (never sooner than Retry-After) and the job goes on once the provider is back; a job the
provider no longer knows fails with a code that says so."""

from __future__ import annotations

from datetime import timedelta

import httpx
import openai
import pytest
from sqlalchemy import update

from service.clock import utcnow
from service.db import session_scope
from service.jobs import refresh
from service.jobs.models import JobRow
from service.providers.errors import ProviderUnavailable
from service.runtime import Runtime
from tests.jobs.conftest import access, follow, submit, upload

BASE = "gpt-4o-mini-2024-07-18"
RETRIEVE = "/v1/fine_tuning/jobs/{fine_tuning_job_id}"


def submitted_job(sdk: openai.OpenAI, runtime: Runtime) -> str:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    assert submit(runtime, job.id).value == "submitted"
    return job.id


def job_row(runtime: Runtime, job_id: str) -> JobRow:
    with session_scope(runtime.sessions) as session:
        return session.get_one(JobRow, job_id)


@pytest.mark.parametrize(
    ("fault", "at_least"),
    [
        ({"rate_limit_next": 3, "retry_after_s": 30}, timedelta(seconds=29)),
        ({"server_error_next": 3, "server_error_status": 503}, timedelta(0)),
        ({"drop_next": 3, "drop_phase": "before"}, timedelta(0)),
    ],
    ids=["429 with Retry-After", "503", "dropped connection"],
)
def test_trouble_while_following_postpones_the_job_and_it_goes_on_afterwards(
    sdk: openai.OpenAI,
    runtime: Runtime,
    emulator: httpx.Client,
    fault: dict[str, object],
    at_least: timedelta,
) -> None:
    job_id = submitted_job(sdk, runtime)
    before = job_row(runtime, job_id)
    emulator.post("/_emulator/faults", json={**fault, "paths": [RETRIEVE], "methods": ["GET"]})

    with pytest.raises(ProviderUnavailable):
        refresh.refresh(runtime.sessions, job_id, access(runtime))

    after = job_row(runtime, job_id)
    assert after.status == before.status
    assert after.error is None
    assert after.quiet_polls == before.quiet_polls + 1
    assert after.next_refresh_at is not None
    assert after.next_refresh_at >= utcnow() + at_least - timedelta(seconds=1)
    emulator.delete("/_emulator/faults")
    assert follow(runtime, job_id).status == "succeeded"


def test_a_job_the_provider_no_longer_knows_fails_saying_so(sdk: openai.OpenAI, runtime: Runtime) -> None:
    job_id = submitted_job(sdk, runtime)
    with session_scope(runtime.sessions) as session:
        session.execute(update(JobRow).where(JobRow.id == job_id).values(provider_job_id="ftjob-forgotten"))

    refresh.refresh(runtime.sessions, job_id, access(runtime))

    failed = job_row(runtime, job_id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error["code"] == "provider_job_not_found"
    assert "ftjob-forgotten" in failed.error["message"]
    seen = sdk.fine_tuning.jobs.retrieve(job_id).error
    assert seen is not None
    assert seen.code == "provider_job_not_found"
