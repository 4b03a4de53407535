"""Many `jobs.submit` tasks for one job, in several processes at the same moment, against the
local provider with and without faults: the provider holds exactly one job of ours and one copy of
each file. Runs on PostgreSQL in CI (FTM_TEST_DATABASE_URL), SQLite otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from service.config import Settings
from service.db import session_scope
from service.jobs.models import JobRow
from service.runtime import Runtime
from tests.factories import chat_example, make_jsonl
from tests.jobs.conftest import upload
from tests.jobs.submitters import Order, SubmitterFleet

BASE = "gpt-4o-mini-2024-07-18"
FLEET_SIZE = 6
MAX_ROUNDS = 12
FAULTS: dict[str, dict[str, Any]] = {
    "no fault": {},
    "provider latency": {"latency_ms": 150},
    "429s": {"rate_limit_next": 8, "retry_after_s": 0},
    "503s": {"server_error_next": 8, "server_error_status": 503},
    "connections dropped after the provider acted": {
        "drop_next": 4,
        "drop_phase": "after",
        "methods": ["POST"],
    },
    "connections dropped before the provider acted": {"drop_next": 6, "drop_phase": "before"},
}


@pytest.fixture(scope="module")
def fleet() -> Iterator[SubmitterFleet]:
    submitters = SubmitterFleet(FLEET_SIZE)
    yield submitters
    submitters.close()


@pytest.fixture
def provider(emulator_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator_url, api_key="sk-local", max_retries=0) as client:
        yield client


def validation_dataset() -> bytes:
    return make_jsonl([chat_example(f"Validation question {n}?", f"Answer {n}.") for n in range(10)])


def provider_job_id(runtime: Runtime, job_id: str) -> str | None:
    with session_scope(runtime.sessions) as session:
        return session.get_one(JobRow, job_id).provider_job_id


def submit_attempts(runtime: Runtime, job_id: str) -> int:
    with session_scope(runtime.sessions) as session:
        return session.get_one(JobRow, job_id).submit_attempts


@dataclass(frozen=True)
class Race:
    """Rounds of racing submits by the fleet, against this test's store and the local provider."""

    fleet: SubmitterFleet
    runtime: Runtime
    settings: Settings
    provider_url: str

    def until_submitted(self, *job_ids: str) -> list[str]:
        """The fleet's processes share out `job_ids` and submit them together, round after round,
        until every job has its provider job; every outcome seen."""
        orders = [
            Order(
                (job_ids[n % len(job_ids)],),
                self.settings.database_url,
                self.settings.data_dir,
                self.provider_url,
            )
            for n in range(self.fleet.size)
        ]
        seen: list[str] = []
        for _ in range(MAX_ROUNDS):
            seen += [outcome for outcomes in self.fleet.submit_together(orders) for outcome in outcomes]
            if all(provider_job_id(self.runtime, job_id) for job_id in job_ids):
                return seen
        raise AssertionError(f"not submitted after {MAX_ROUNDS} rounds: {seen}")


@pytest.fixture
def race(fleet: SubmitterFleet, runtime: Runtime, settings: Settings, emulator_url: str) -> Race:
    return Race(fleet, runtime, settings, emulator_url)


def copies_at_provider(provider: openai.OpenAI, file_id: str) -> int:
    return sum(
        1 for file in provider.files.list(purpose="fine-tune") if file.filename.startswith(f"{file_id}-")
    )


@pytest.mark.parametrize("fault", FAULTS)
def test_racing_submits_create_one_provider_job_and_upload_each_file_once(
    fault: str,
    race: Race,
    sdk: openai.OpenAI,
    runtime: Runtime,
    emulator: httpx.Client,
    provider: openai.OpenAI,
) -> None:
    training, validation = upload(sdk, runtime), upload(sdk, runtime, validation_dataset())
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=training, validation_file=validation)
    if FAULTS[fault]:
        emulator.post("/_emulator/faults", json=FAULTS[fault])

    outcomes = race.until_submitted(job.id)
    emulator.delete("/_emulator/faults")

    created = provider.fine_tuning.jobs.list(metadata={"ftm_job_id": job.id}).data
    assert [remote.id for remote in created] == [provider_job_id(runtime, job.id)]
    assert (copies_at_provider(provider, training), copies_at_provider(provider, validation)) == (1, 1)
    assert [outcome for outcome in outcomes if outcome.startswith("error")] == []
    assert outcomes.count("submitted") == 1
    assert submit_attempts(runtime, job.id) == outcomes.count("retry") + 1  # one at a time, each counted
    assert sdk.fine_tuning.jobs.retrieve(job.id).status != "failed"


def test_racing_submits_of_two_jobs_on_one_file_upload_it_once(
    race: Race, sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client, provider: openai.OpenAI
) -> None:
    training = upload(sdk, runtime)
    first = sdk.fine_tuning.jobs.create(model=BASE, training_file=training)
    second = sdk.fine_tuning.jobs.create(model=BASE, training_file=training, seed=7)
    emulator.post("/_emulator/faults", json={"latency_ms": 100})

    race.until_submitted(first.id, second.id)
    emulator.delete("/_emulator/faults")

    assert copies_at_provider(provider, training) == 1
    for job in (first, second):
        assert len(provider.fine_tuning.jobs.list(metadata={"ftm_job_id": job.id}).data) == 1


def test_racing_submits_of_a_job_whose_file_is_at_the_provider_create_once(
    race: Race, sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client, provider: openai.OpenAI
) -> None:
    training = upload(sdk, runtime)
    race.until_submitted(sdk.fine_tuning.jobs.create(model=BASE, training_file=training).id)
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=training, seed=11)
    emulator.post(
        "/_emulator/faults", json={"latency_ms": 300, "paths": ["/v1/fine_tuning/jobs"], "methods": ["POST"]}
    )

    race.until_submitted(job.id)
    emulator.delete("/_emulator/faults")

    assert len(provider.fine_tuning.jobs.list(metadata={"ftm_job_id": job.id}).data) == 1
    assert copies_at_provider(provider, training) == 1
