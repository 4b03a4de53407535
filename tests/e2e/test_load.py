"""Load on the running stack, counted at the provider per job: jobs created a second apart (so the
sweep and the create's own submit meet), and many at once while the provider answers 429s and
503s. Every job makes exactly one provider job, every file is uploaded once, and every job's
webhook goes out once."""

from __future__ import annotations

import io
import queue
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from openai.types.webhooks import FineTuningJobSucceededWebhookEvent

from tests.e2e.conftest import Received, Receiver, Stack, provider_copies_of, provider_jobs_of
from tests.e2e.test_fine_tuning_flow import BASE_MODEL, sdk, wait_for
from tests.factories import chat_example, make_jsonl

pytestmark = pytest.mark.e2e
TERMINAL = ("succeeded", "failed", "cancelled")
JOBS = 100


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


def test_a_hundred_jobs_at_once_under_429s_and_503s_make_one_provider_job_and_one_webhook_each(
    stack: Stack, emulator: httpx.Client, receiver: Receiver
) -> None:
    client = sdk(stack, stack.admin_key)
    endpoint = client.webhooks.create(
        name="load receiver", url=receiver.url, event_types=["fine_tuning.job.succeeded"]
    )
    files = [upload(client, 100 + n) for n in range(JOBS)]
    emulator.delete("/_emulator/stats")
    emulator.post(
        "/_emulator/faults",
        json={"rate_limit_next": 40, "retry_after_s": 1, "server_error_next": 40, "server_error_status": 503},
    )

    with ThreadPoolExecutor(max_workers=10) as pool:
        jobs = list(
            pool.map(
                lambda file_id: client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=file_id).id,
                files,
            )
        )
    statuses = finished(client, jobs)
    deliveries: list[Received] = []
    while len(deliveries) < JOBS:
        deliveries.append(receiver.requests.get(timeout=120))
    while True:  # a duplicate would come within moments, if at all
        try:
            deliveries.append(receiver.requests.get(timeout=2))
        except queue.Empty:
            break

    assert set(statuses.values()) == {"succeeded"}
    assert {job_id: provider_jobs_of(stack, job_id) for job_id in jobs} == dict.fromkeys(jobs, 1)
    assert provider_copies_of(stack, files) == dict.fromkeys(files, 1)
    events = [client.webhooks.unwrap(d.body, d.headers, secret=endpoint.signing_secret) for d in deliveries]
    assert all(isinstance(event, FineTuningJobSucceededWebhookEvent) for event in events)
    assert Counter(getattr(event.data, "id", None) for event in events) == dict.fromkeys(jobs, 1)
    assert len({d.headers["webhook-id"] for d in deliveries}) == JOBS
