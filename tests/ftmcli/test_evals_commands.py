"""`ftm evals create/run/runs/items/compare` against a running service whose runs are worked
in-process (as a worker would), on the local provider."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import select

from ftmcli.app import main
from service.db import session_scope
from service.evals.models import EvalRunRow
from service.runtime import Runtime
from tests.evals.conftest import work
from tests.factories import JONNY_HELD_OUT
from tests.jobs.conftest import emulator_url, settings
from tests.servers import serve

__all__ = ["emulator_url", "settings"]

BASE = "gpt-4o-mini-2024-07-18"


def test_an_eval_is_created_run_listed_and_its_items_shown(
    app: FastAPI, runtime: Runtime, tenant_key: str, tmp_path: Path
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in JONNY_HELD_OUT[:3]))
    stop = threading.Event()

    def worker() -> None:  # what a Celery worker does with the runs that are queued
        while not stop.wait(0.1):
            with session_scope(runtime.sessions) as session:
                queued = list(session.scalars(select(EvalRunRow.id).where(EvalRunRow.status == "queued")))
            for run_id in queued:
                work(runtime, run_id)

    thread = threading.Thread(target=worker, daemon=True)
    with serve(app) as url:
        env = {"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": tenant_key, "FTM_CONFIG_DIR": str(tmp_path)}

        def ftm(*args: str) -> Any:
            result = CliRunner().invoke(main, [*args, "--json"], env=env)
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)

        thread.start()
        try:
            eval_id = ftm("evals", "create", "--name", "jonny", "--exact")["id"]
            run = ftm("evals", "run", eval_id, "--model", BASE, "--items", str(items), "--interval", "0.1")
            runs = ftm("evals", "runs", eval_id)
            listed = ftm("evals", "items", eval_id, run["id"])
            failed = ftm("evals", "items", eval_id, run["id"], "--status", "fail")
        finally:
            stop.set()
            thread.join(10)

    assert run["status"] == "completed"
    assert [r["id"] for r in runs["data"]] == [run["id"]]
    assert len(listed["data"]) == 3
    assert {r["name"] for r in listed["data"][0]["results"]} == {"rouge_l", "exact"}
    assert len(failed["data"]) == run["result_counts"]["failed"]
