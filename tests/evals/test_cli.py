"""`ftm evals run` and `ftm evals compare` against the service served on a real socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
from click.testing import CliRunner
from fastapi import FastAPI

from ftmcli.app import main
from ftmcli.evals import comparison_rows
from service.runtime import Runtime
from tests.evals.conftest import ITEM_SCHEMA, ROUGE_L, work
from tests.servers import serve

BASE = "gpt-4o-mini-2024-07-18"


def test_runs_started_from_the_cli_are_compared_as_a_table(
    app: FastAPI, sdk: openai.OpenAI, runtime: Runtime, tenant_key: str, tmp_path: Path
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"question": f"Q{n}?", "answer": f"A{n}."}) + "\n" for n in range(3)))
    config: Any = {"type": "custom", "item_schema": ITEM_SCHEMA}
    criterion: Any = ROUGE_L
    eval_id = sdk.evals.create(data_source_config=config, testing_criteria=[criterion]).id
    with serve(app) as url:
        env = {"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": tenant_key, "FTM_PROFILE": ""}
        runner = CliRunner(env=env)
        run_ids = []
        for _ in range(2):
            started = runner.invoke(
                main, ["evals", "run", eval_id, "--model", BASE, "--items", str(items), "--no-wait", "--json"]
            )
            assert started.exit_code == 0, started.output
            run_ids.append(json.loads(started.stdout)["id"])
            work(runtime, run_ids[-1])

        table = runner.invoke(main, ["evals", "compare", eval_id, *run_ids])
        as_json = runner.invoke(main, ["evals", "compare", eval_id, *run_ids, "--json"])

    assert table.exit_code == 0, table.output
    assert "rouge" in table.stdout
    assert "verdict: no_significant_difference" in table.output
    comparison = json.loads(as_json.stdout)
    assert comparison["criteria"][0]["ties"] == 3
    assert comparison_rows(comparison)[0][:2] == ["rouge", "0/3/0"]
