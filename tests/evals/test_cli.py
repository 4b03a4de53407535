"""`ftm evals run`, `ftm evals compare`, `ftm jobs evaluation` and `ftm deployments show|promotions`
against the service served on a real socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ftmcli.app import main
from ftmcli.evals import comparison_rows
from service.runtime import Runtime
from tests.conftest import bearer
from tests.evals.conftest import ITEM_SCHEMA, ROUGE_L, evaluate_jobs, work
from tests.evals.test_evaluate_on_success import held_out_file, succeeded_job
from tests.jobs.conftest import follow, submit, upload
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


def test_a_jobs_evaluation_and_a_gated_deployments_decisions_are_shown_by_the_cli(
    app: FastAPI, sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str
) -> None:
    gate = {"require": "better", "alpha": 0.01}
    created = client.post(
        "/v1/deployments",
        headers=bearer(tenant_key),
        json={
            "name": "jonny-bot",
            "targets": [{"model": BASE}],
            "promotion": {"suffix": "jonny", "gate": gate},
        },
    )
    assert created.status_code == 200, created.text
    job_id = succeeded_job(sdk, runtime, validation_file=held_out_file(sdk, runtime), suffix="jonny")
    evaluate_jobs(runtime)

    with serve(app) as url:
        runner = CliRunner(env={"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": tenant_key, "FTM_PROFILE": ""})
        evaluation = runner.invoke(main, ["jobs", "evaluation", job_id])
        shown = runner.invoke(main, ["deployments", "show", "jonny-bot"])
        decided = runner.invoke(main, ["deployments", "promotions", "jonny-bot"])

    assert evaluation.exit_code == 0, evaluation.output
    assert "verdict: candidate_better" in evaluation.output
    comparison = client.get(f"/v1/fine_tuning/jobs/{job_id}/evaluation", headers=bearer(tenant_key)).json()
    for criterion, counts, *_ in comparison_rows(comparison["comparison"]):
        assert criterion in evaluation.stdout
        assert counts in evaluation.stdout
    assert shown.exit_code == 0, shown.output
    assert "gate: better (alpha 0.01)" in shown.stdout
    assert decided.exit_code == 0, decided.output
    assert "gate_passed" in decided.stdout


def test_jobs_create_asks_for_an_evaluation_on_another_file_or_none(
    app: FastAPI, sdk: openai.OpenAI, runtime: Runtime, client: TestClient, tenant_key: str
) -> None:
    training, held_out = upload(sdk, runtime), held_out_file(sdk, runtime)
    create = ["jobs", "create", "--model", BASE, "--training-file", training, "--json"]
    with serve(app) as url:
        runner = CliRunner(env={"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": tenant_key, "FTM_PROFILE": ""})
        named = runner.invoke(main, [*create, "--evaluation-file", held_out])
        off = runner.invoke(main, [*create, "--validation-file", held_out, "--no-evaluation"])
    assert named.exit_code == 0, named.output
    assert off.exit_code == 0, off.output
    job_ids = [json.loads(result.stdout)["id"] for result in (named, off)]
    for job_id in job_ids:
        submit(runtime, job_id)
        assert follow(runtime, job_id).status == "succeeded"

    evaluate_jobs(runtime)

    found = [
        client.get(f"/v1/fine_tuning/jobs/{job_id}/evaluation", headers=bearer(tenant_key))
        for job_id in job_ids
    ]
    assert (found[0].json()["file_id"], found[0].json()["status"]) == (held_out, "completed")
    assert found[1].status_code == 404
