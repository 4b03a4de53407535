"""A worker process is killed (SIGKILL) after the provider created the job but before our
database knew it: the task is delivered again (late acknowledgement, rejected on worker loss) but
finds the dead worker's submit claim and leaves the job alone; once the claim's lease runs out the
sweep queues a submit that looks the job up by our id and adopts it. The provider holds exactly one
job and one copy of the file."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Stack, provider_copies_of, provider_jobs_of
from tests.e2e.test_fine_tuning_flow import BASE_MODEL, sdk, wait_for
from tests.factories import jonny_dataset

pytestmark = pytest.mark.e2e
SLOW_EVENTS = "/v1/fine_tuning/jobs/{fine_tuning_job_id}/events"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def worker_pool(stack: Stack) -> list[int]:
    """The Celery worker's pool processes (the processes that run tasks) of this stack."""
    for pid in children(stack.pid):
        if b" worker " in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "):
            return children(pid)
    raise AssertionError("no worker process in the stack")


def test_a_worker_killed_mid_submit_leaves_exactly_one_provider_job(stack: Stack) -> None:
    client = sdk(stack, stack.admin_key)
    emulator = httpx.Client(
        base_url=stack.emulator_url.removesuffix("/v1"), headers={"Authorization": "Bearer sk-local"}
    )
    emulator.delete("/_emulator/stats")
    emulator.post("/_emulator/faults", json={"latency_ms": 5000, "paths": [SLOW_EVENTS], "methods": ["GET"]})
    uploaded = client.files.create(file=("jonny.jsonl", io.BytesIO(jonny_dataset())), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=uploaded.id)

    wait_for(
        lambda: emulator.get("/_emulator/stats").json().get("POST /v1/fine_tuning/jobs"), "the provider job"
    )
    for pid in worker_pool(stack):
        os.kill(pid, signal.SIGKILL)
    emulator.delete("/_emulator/faults")
    done = wait_for(
        lambda: (
            (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed") and j or None
        ),
        "the job to finish",
    )

    assert done.status == "succeeded"
    assert provider_jobs_of(stack, job.id) == 1
    assert provider_copies_of(stack, [uploaded.id]) == {uploaded.id: 1}
    emulator.close()
