"""Load on the running stack, counted at the provider per job: jobs created a second apart (so the
sweep and the create's own submit meet), and many at once while the provider answers 429s and
503s. Every job makes exactly one provider job, and every file is uploaded once."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.e2e.conftest import Stack, provider_copies_of, provider_jobs_of
from tests.e2e.test_fine_tuning_flow import BASE_MODEL, sdk, wait_for
from tests.factories import chat_example, make_jsonl

pytestmark = pytest.mark.e2e
TERMINAL = ("succeeded", "failed", "cancelled")


def dataset(n: int) -> bytes:
    return make_jsonl([chat_example(f"Load question {n}.{i}?", f"Load answer {n}.{i}.") for i in range(10)])


def upload(client: openai.OpenAI, n: int) -> str:
    return client.files.create(file=(f"load-{n}.jsonl", io.BytesIO(dataset(n))), purpose="fine-tune").id


def finished(client: openai.OpenAI, job_ids: list[str]) -> dict[str, str]:
    def all_done() -> dict[str, str] | None:
        statuses: dict[str, str] = {
            job_id: client.fine_tuning.jobs.retrieve(job_id).status for job_id in job_ids
        }
        return statuses if all(status in TERMINAL for status in statuses.values()) else None

    return wait_for(all_done, "every job to finish", 240)


@pytest.fixture
def emulator(stack: Stack) -> Iterator[httpx.Client]:
    admin = httpx.Client(
        base_url=stack.emulator_url.removesuffix("/v1"), headers={"Authorization": "Bearer sk-local"}
    )
    yield admin
    admin.delete("/_emulator/faults")
    admin.close()


def test_jobs_created_a_second_apart_each_make_one_provider_job(stack: Stack) -> None:
    client = sdk(stack, stack.admin_key)
    files = [upload(client, n) for n in range(12)]

    jobs = []
    for file_id in files:
        jobs.append(client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=file_id).id)
        time.sleep(1)
    statuses = finished(client, jobs)

    assert set(statuses.values()) == {"succeeded"}
    assert {job_id: provider_jobs_of(stack, job_id) for job_id in jobs} == dict.fromkeys(jobs, 1)
    assert provider_copies_of(stack, files) == dict.fromkeys(files, 1)


def test_thirty_jobs_at_once_under_429s_and_503s_each_make_one_provider_job(
    stack: Stack, emulator: httpx.Client
) -> None:
    client = sdk(stack, stack.admin_key)
    files = [upload(client, 100 + n) for n in range(30)]
    emulator.post(
        "/_emulator/faults",
        json={"rate_limit_next": 25, "retry_after_s": 1, "server_error_next": 25, "server_error_status": 503},
    )

    with ThreadPoolExecutor(max_workers=10) as pool:
        jobs = list(
            pool.map(
                lambda file_id: client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=file_id).id,
                files,
            )
        )
    statuses = finished(client, jobs)

    assert set(statuses.values()) == {"succeeded"}
    assert {job_id: provider_jobs_of(stack, job_id) for job_id in jobs} == dict.fromkeys(jobs, 1)
    assert provider_copies_of(stack, files) == dict.fromkeys(files, 1)
