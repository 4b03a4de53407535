"""A worker process is killed (SIGKILL) in the middle of an eval run: the run resumes under another
worker once its lease runs out, and no item is sampled twice — the local provider counts at most one
chat completion per item, and every item that was not in flight at the kill is sampled exactly once.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack, _e2e_redis_url, run_stack
from tests.e2e.test_fine_tuning_flow import BASE_MODEL, sdk, wait_for
from tests.e2e.test_worker_crash import worker_pool

pytestmark = pytest.mark.e2e
CHAT = "POST /v1/chat/completions"
ITEMS = 40


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Stack]:
    quick = {"FTM_EVALS_LEASE_S": "3", "FTM_EVALS_SWEEP_INTERVAL_S": "1", "FTM_EVALS_BATCH_SIZE": "8"}
    with run_stack(
        tmp_path_factory.mktemp("stack"),
        redis_url=_e2e_redis_url(),
        database_url=database_url,
        extra_env=quick,
    ) as running:
        yield running


def test_a_worker_killed_mid_run_resumes_without_sampling_any_item_twice(
    stack: Stack, tmp_path: Path
) -> None:
    client = sdk(stack, stack.admin_key)
    emulator = httpx.Client(
        base_url=stack.emulator_url.removesuffix("/v1"), headers={"Authorization": "Bearer sk-local"}
    )
    emulator.delete("/_emulator/stats")
    emulator.post("/_emulator/faults", json={"latency_ms": 300, "paths": ["/v1/chat/completions"]})
    config: Any = {"type": "custom", "item_schema": {"type": "object"}, "include_sample_schema": True}
    evaluation = client.evals.create(
        data_source_config=config,
        testing_criteria=[
            {
                "type": "string_check",
                "name": "polite",
                "input": "{{sample.output_text}}",
                "reference": "sorry",
                "operation": "ilike",
            }
        ],
    )
    source: Any = {
        "type": "completions",
        "model": BASE_MODEL,
        "source": {"type": "file_content", "content": [{"item": {"n": n}} for n in range(ITEMS)]},
        "input_messages": {
            "type": "template",
            "template": [{"role": "user", "content": "Question {{item.n}}?"}],
        },
    }
    run = client.evals.runs.create(evaluation.id, data_source=source)

    wait_for(lambda: (emulator.get("/_emulator/stats").json().get(CHAT) or 0) >= 10 or None, "some samples")
    for pid in worker_pool(stack):
        os.kill(pid, signal.SIGKILL)
    done = wait_for(
        lambda: (
            (r := client.evals.runs.retrieve(run.id, eval_id=evaluation.id)).status == "completed"
            and r
            or None
        ),
        "the run to finish",
    )

    items = list(client.evals.runs.output_items.list(run.id, eval_id=evaluation.id, limit=100))
    interrupted = [i for i in items if i.sample.error.code == "sample_interrupted"]
    sampled = [i for i in items if i.sample.output]
    calls = emulator.get("/_emulator/stats").json()[CHAT]
    assert len(items) == ITEMS
    assert len(sampled) + len(interrupted) == ITEMS
    assert len(sampled) <= calls <= ITEMS  # at most one call per item, one for every sampled item
    assert done.result_counts.passed == len(sampled)
    emulator.delete("/_emulator/faults")
    emulator.close()
