"""Faults dialled in at run time: the SDK sees them as OpenAI's errors; statistics count handled requests."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from tests.emulator.clock import FakeClock
from tests.emulator.conftest import make_client, run_to_end, upload
from tests.emulator.samples import chat_jsonl

MODEL = "gpt-4o-mini-2024-07-18"
JOBS = "/v1/fine_tuning/jobs"


def test_wrong_bearer_key_is_401(http: TestClient) -> None:
    wrong = make_client(http, api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.models.list()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_missing_bearer_key_is_401_on_admin_routes_too(http: TestClient) -> None:
    response = http.get("/_emulator/faults")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_rate_limit_fault_gives_429_with_retry_after(sdk: openai.OpenAI, admin: TestClient) -> None:
    # Given the next request is rate limited
    admin.post("/_emulator/faults", json={"rate_limit_next": 1, "retry_after_s": 2})

    # When the SDK makes two requests
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.models.list()
    recovered = sdk.models.list()

    # Then the first is a 429 with Retry-After and OpenAI's code, the second succeeds
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"
    assert recovered.data


def test_server_error_fault_gives_5xx(sdk: openai.OpenAI, admin: TestClient) -> None:
    admin.post("/_emulator/faults", json={"server_error_next": 2})
    with pytest.raises(openai.InternalServerError) as first:
        sdk.files.list()
    admin.post("/_emulator/faults", json={"server_error_status": 503})
    with pytest.raises(openai.InternalServerError) as second:
        sdk.files.list()
    assert (first.value.status_code, second.value.status_code) == (500, 503)
    assert sdk.files.list().data == []


def test_latency_fault_delays_every_v1_request_until_reset(
    sdk: openai.OpenAI, admin: TestClient, clock: FakeClock
) -> None:
    # Given 150 ms of latency
    admin.post("/_emulator/faults", json={"latency_ms": 150})

    # When two requests run, then the knobs are reset and one more runs
    sdk.models.list()
    sdk.files.list()
    admin.delete("/_emulator/faults")
    sdk.models.list()

    # Then each of the first two waited 150 ms before being served, and the last did not wait
    assert clock.slept == [0.15, 0.15]


def test_fault_path_filter_targets_only_job_creation(sdk: openai.OpenAI, admin: TestClient) -> None:
    # Given a 500 aimed at job creation only
    training = upload(sdk, chat_jsonl())
    admin.post("/_emulator/faults", json={"server_error_next": 1, "paths": [JOBS], "methods": ["POST"]})

    # When other requests run first, then a job is created twice
    sdk.fine_tuning.jobs.list()
    sdk.files.list()
    with pytest.raises(openai.InternalServerError):
        sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)

    # Then only the first creation failed, and exactly one job exists
    assert [j.id for j in sdk.fine_tuning.jobs.list().data] == [job.id]
    assert admin.get("/_emulator/stats").json()[f"POST {JOBS}"] == 1


def test_dropped_connection_before_handling_creates_nothing(sdk: openai.OpenAI, admin: TestClient) -> None:
    training = upload(sdk, chat_jsonl())
    admin.post("/_emulator/faults", json={"drop_next": 1, "drop_phase": "before"})
    with pytest.raises(openai.APIConnectionError):
        sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)
    assert sdk.fine_tuning.jobs.list().data == []


def test_dropped_answer_after_handling_leaves_the_job_to_be_found_by_metadata(
    sdk: openai.OpenAI, admin: TestClient
) -> None:
    # Given the answer to the next job creation will be lost
    training = upload(sdk, chat_jsonl())
    admin.post("/_emulator/faults", json={"drop_next": 1, "drop_phase": "after", "paths": [JOBS]})

    # When a job is created with our id in its metadata
    with pytest.raises(openai.APIConnectionError):
        sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id, metadata={"ftm_job_id": "job-1"})

    # Then the job exists anyway, and a lookup by metadata finds it (created exactly once)
    found = sdk.fine_tuning.jobs.list(metadata={"ftm_job_id": "job-1"}).data
    assert len(found) == 1
    assert admin.get("/_emulator/stats").json()[f"POST {JOBS}"] == 1


def test_fail_jobs_makes_the_next_job_fail_after_starting(
    sdk: openai.OpenAI, admin: TestClient, clock: FakeClock
) -> None:
    # Given the next job is set to fail
    admin.post("/_emulator/faults", json={"fail_jobs": 1})
    training = upload(sdk, chat_jsonl())

    # When two jobs run
    doomed = run_to_end(sdk, clock, sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id).id)
    fine = run_to_end(sdk, clock, sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id).id)

    # Then only the first failed, after it had started training
    assert doomed.status == "failed"
    assert doomed.error is not None
    assert doomed.error.code == "internal_error"
    messages = [e.message for e in sdk.fine_tuning.jobs.list_events(doomed.id, limit=50)]
    assert "Fine-tuning job started" in messages
    assert fine.status == "succeeded"
    assert admin.get("/_emulator/faults").json()["fail_jobs"] == 0


def test_speed_can_change_while_a_job_runs(sdk: openai.OpenAI, admin: TestClient, clock: FakeClock) -> None:
    # Given a job running at a crawl (91 steps of 10 s)
    admin.post("/_emulator/faults", json={"seconds_per_step": 10})
    training = upload(sdk, chat_jsonl())
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)
    clock.advance(25)
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "running"

    # When the speed is raised to 0.1 s a step and 10 s pass
    admin.post("/_emulator/faults", json={"seconds_per_step": 0.1})
    clock.advance(10)

    # Then it has finished (at the old speed it would still be on its first steps)
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "succeeded"


def test_stats_count_handled_requests_per_route_template(sdk: openai.OpenAI, admin: TestClient) -> None:
    training = upload(sdk, chat_jsonl())
    sdk.files.retrieve(training.id)
    sdk.files.retrieve(training.id)
    stats = admin.get("/_emulator/stats").json()
    assert stats == {"POST /v1/files": 1, "GET /v1/files/{file_id}": 2}
    assert admin.delete("/_emulator/stats").json() == {}


def test_unknown_fault_knob_is_rejected(admin: TestClient) -> None:
    response = admin.post("/_emulator/faults", json={"explode": True})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "explode"
