"""An eval run of 1,000 items against the local provider (its own process, as in `make run`): items
per second of a whole run (sampling through the provider, string_check and rouge_l grading, every
claim and result written to SQLite), worked by one `evals.run` task's code in this process; and the
grading cost per item on its own (the same two criteria over the run's recorded samples)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.servers import service_process
from devtools.devstack import free_port
from service.auth import service as auth
from service.auth.keys import ALL_SCOPES
from service.config import Settings
from service.db import session_scope
from service.evals import service as evals
from service.evals.graders.grade import GradingSettings, grade
from service.evals.runner import Outcome, process_run
from service.evals.sampling import ModelCaller
from service.evals.schemas import EvalCreate, RunCreate
from service.evals.service import items_of
from service.migrate import upgrade
from service.runtime import Runtime

ITEMS = 1000
CRITERIA: list[Any] = [
    {
        "type": "string_check",
        "name": "exact",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": "eq",
    },
    {
        "type": "text_similarity",
        "name": "rouge",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "evaluation_metric": "rouge_l",
        "pass_threshold": 0.5,
    },
]


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        emulator_port = free_port()
        emulator = f"http://127.0.0.1:{emulator_port}/v1"
        env = {
            **os.environ,
            "FTM_DATA_DIR": str(data),
            "FTM_EMULATOR_DATA_DIR": str(data / "emulator"),
            "FTM_LOG_LEVEL": "WARNING",
        }
        settings = Settings(
            _env_file=None, data_dir=data, local_provider_base_url=emulator, evals_run_slice_s=3600
        )
        upgrade(settings.database_url)
        runtime = Runtime(settings)
        with session_scope(runtime.sessions) as session:
            tenant = auth.get_or_create_tenant(session, "bench")
            auth.create_key(session, tenant, scopes=ALL_SCOPES)
            tenant_id, tenant_name = tenant.id, tenant.name
            evaluation = evals.create_eval(
                session,
                EvalCreate(
                    data_source_config={"type": "custom", "item_schema": {"type": "object"}},
                    testing_criteria=CRITERIA,
                ),
                tenant_id=tenant_id,
                tenant_name=tenant_name,
                settings=settings,
            )
            items = [
                {"item": {"question": f"What is fact number {n}?", "answer": f"Fact {n} is true."}}
                for n in range(ITEMS)
            ]
            source = {
                "type": "completions",
                "model": "gpt-4o-mini-2024-07-18",
                "source": {"type": "file_content", "content": items},
                "input_messages": {
                    "type": "template",
                    "template": [{"role": "user", "content": "{{item.question}}"}],
                },
            }
            run_id = evals.create_run(
                session,
                runtime.blobs,
                evaluation,
                RunCreate(data_source=source),
                tenant_name=tenant_name,
                settings=settings,
            ).id
        with service_process(["emulator", "--port", str(emulator_port)], env, f"{emulator}/models"):
            started = time.perf_counter()
            while process_run(runtime.sessions, runtime.providers, settings, run_id) != Outcome.FINISHED:
                pass
            elapsed = time.perf_counter() - started
        with session_scope(runtime.sessions) as session:
            pairs = [{"item": row.item, "sample": row.sample or {}} for row in items_of(session, run_id)]
        caller = ModelCaller(runtime.sessions, runtime.providers, tenant_id, tenant_name)
        grading = GradingSettings(settings.evals_embedding_model, None)
        with session_scope(runtime.sessions) as session:  # the stored, checked criteria
            criteria = evals.get_eval(session, evaluation.id, tenant_id=tenant_id).testing_criteria
        started = time.perf_counter()
        for context in pairs:
            for criterion in criteria:
                grade(criterion, context, caller=caller, settings=grading)
        grading_s = time.perf_counter() - started
        runtime.close()
    print(
        f"{'1,000-item run (sample+grade)':<30}: {ITEMS / elapsed:8.1f} items/s ({elapsed:.2f} s, "
        f"batch {settings.evals_batch_size}, {settings.evals_concurrency} calls in flight)"
    )
    print(f"{'grading alone (exact + rouge_l)':<30}: {grading_s / ITEMS * 1e6:8.1f} µs per item")
