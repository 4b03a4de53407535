"""`ftm data prepare`: runs locally on the service's own preparation, validation and estimate code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ftmcli.app import main
from service.jobs.costs import default_epochs, training_cost
from tests.conftest import bearer
from tests.factories import JONNY_QA
from tests.files.test_preparation import csv_of
from tests.servers import serve

ROWS = [*JONNY_QA, JONNY_QA[0], *((f"Tell me: {q}", a) for q, a in JONNY_QA)]  # 27 rows, one repeated
MAPPING = ["--user-column", "question", "--assistant-column", "answer", "--system", "You know Jonny."]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "bio.csv"
    path.write_bytes(csv_of(ROWS))
    return path


def ftm(*args: str | Path) -> Result:
    return CliRunner().invoke(
        main, [str(arg) for arg in args], env={"NO_COLOR": "1", "FTM_TRAINING_PRICES": "{}"}
    )


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_prepare_writes_the_split_files_and_reports_them_as_json(source: Path) -> None:
    result = ftm("data", "prepare", source, *MAPPING, "--validation-split", "10", "--seed", "4", "--json")

    assert result.exit_code == 0, result.output
    report = as_json(result)
    training, validation = Path(report["training_file"]), Path(report["validation_file"])
    assert (training.name, validation.name) == ("bio_train.jsonl", "bio_validation.jsonl")
    assert len(training.read_text().splitlines()) == 16
    assert len(validation.read_text().splitlines()) == 10
    assert report["summary"]["duplicates"] == [{"row": 15, "first_row": 2}]
    assert (report["training_report"]["examples"], report["validation_report"]["examples"]) == (16, 10)


def test_the_estimate_is_the_services_for_the_chosen_model_and_epochs(source: Path) -> None:
    report = as_json(
        ftm("data", "prepare", source, *MAPPING, "--model", "gpt-3.5-turbo-0125", "--epochs", "2", "--json")
    )

    estimate = report["estimate"]
    billed = report["training_report"]["tokens"]["cl100k_base"]["total_tokens"]
    assert (estimate["base_model"], estimate["encoding"], estimate["n_epochs"]) == (
        "gpt-3.5-turbo-0125",
        "cl100k_base",
        2,
    )
    assert estimate["billed_tokens_per_epoch"] == billed
    assert estimate["estimated_cost_usd"] == training_cost(billed, 2, 8.00)


def test_auto_epochs_follow_openais_heuristic(source: Path) -> None:
    report = as_json(ftm("data", "prepare", source, *MAPPING, "--json"))

    assert report["estimate"]["n_epochs"] == default_epochs(26)
    assert report["estimate"]["n_epochs_auto"] is True


def test_the_same_seed_writes_the_same_split(source: Path, tmp_path: Path) -> None:
    first = as_json(
        ftm(
            "data",
            "prepare",
            source,
            *MAPPING,
            "--validation-split",
            "0.4",
            "--seed",
            "9",
            "--output",
            tmp_path / "a_train.jsonl",
            "--json",
        )
    )
    second = as_json(
        ftm(
            "data",
            "prepare",
            source,
            *MAPPING,
            "--validation-split",
            "0.4",
            "--seed",
            "9",
            "--output",
            tmp_path / "b.jsonl",
            "--json",
        )
    )

    assert Path(first["validation_file"]).name == "a_validation.jsonl"
    assert Path(first["validation_file"]).read_bytes() == Path(second["validation_file"]).read_bytes()


def test_rows_with_problems_exit_1_naming_them_and_write_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"question,answer\nWho?,Jonny.\nWhen?,\n")

    result = ftm("data", "prepare", path, *MAPPING, "--json")

    assert result.exit_code == 1
    assert as_json(result)["problems"] == [
        {
            "row": 3,
            "column": "answer",
            "category": "empty_cell",
            "message": "row 3, column 'answer' is empty.",
        }
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_no_dedup_keeps_the_repeated_row_and_validation_warns(source: Path) -> None:
    report = as_json(ftm("data", "prepare", source, *MAPPING, "--no-dedup", "--json"))

    assert report["summary"]["examples"] == 27
    assert report["training_report"]["warning_categories"]["duplicate_example"]["lines"] == [14]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--validation-split", "lots"], "--validation-split must be a fraction"),
        (["--validation-split", "1.5"], "--validation-split: validation_split must be a fraction below 1"),
        (["--model", "gpt-99"], "--model: choose one of"),
        (["--add-stop"], "--add-stop: add_stop applies to prompt-completion data only."),
    ],
)
def test_bad_options_exit_2_with_one_line(source: Path, args: list[str], message: str) -> None:
    result = ftm("data", "prepare", source, *MAPPING, *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_prompt_completion_data_gets_the_advice_and_apply_advice_follows_it(tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_text(json.dumps([{"q": f"Question {n}", "a": f"Answer {n}"} for n in range(12)]))

    advised = as_json(
        ftm(
            "data",
            "prepare",
            path,
            "--format",
            "completion",
            "--prompt-column",
            "q",
            "--completion-column",
            "a",
            "--json",
        )
    )
    applied = as_json(
        ftm(
            "data",
            "prepare",
            path,
            "--format",
            "completion",
            "--prompt-column",
            "q",
            "--completion-column",
            "a",
            "--apply-advice",
            "--json",
        )
    )

    assert [a["code"] for a in advised["summary"]["advice"]] == ["separator", "whitespace", "stop"]
    assert advised["estimate"]["base_model"] == "babbage-002"
    first = json.loads(Path(applied["training_file"]).read_text().splitlines()[0])
    assert first == {"prompt": "Question 0\n\n###\n\n", "completion": " Answer 0\n"}


def test_the_human_report_shows_counts_tokens_cost_and_warnings(source: Path) -> None:
    result = ftm("data", "prepare", source, *MAPPING, "--validation-split", "10", "--seed", "4")

    assert result.exit_code == 0, result.output
    for shown in (
        "26 chat examples",
        "duplicates removed  1",
        "16 examples -> ",
        "tokens per example (o200k_base)",
        "cost",
        "few_examples",
    ):
        assert shown in result.stdout, shown


def test_separator_and_stop_take_backslash_escapes(tmp_path: Path) -> None:
    path = tmp_path / "qa.tsv"
    path.write_text("q\ta\n" + "".join(f"Question {n}\tAnswer {n}\n" for n in range(12)))

    report = as_json(
        ftm(
            "data",
            "prepare",
            path,
            "--format",
            "completion",
            "--prompt-column",
            "q",
            "--completion-column",
            "a",
            "--add-separator",
            "--separator",
            r"\n->",
            "--add-stop",
            "--stop",
            r"\n",
            "--json",
        )  # fmt: skip
    )

    first = json.loads(Path(report["training_file"]).read_text().splitlines()[0])
    assert first == {"prompt": "Question 0\n->", "completion": "Answer 0\n"}


def test_remote_prepares_in_the_service_and_names_the_files_it_made(
    source: Path, app: FastAPI, client: TestClient, tenant_key: str, tmp_path: Path
) -> None:
    with serve(app) as url:
        env = {"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": tenant_key, "FTM_CONFIG_DIR": str(tmp_path)}
        args = [
            "data",
            "prepare",
            str(source),
            *MAPPING,
            "--validation-split",
            "5",
            "--seed",
            "4",
            "--remote",
        ]
        made = CliRunner().invoke(main, [*args, "--json"], env=env)
        bad = CliRunner().invoke(main, [*args[:3], "--user-column", "nope", "--remote"], env=env)

    assert made.exit_code == 0, made.output
    preparation = json.loads(made.stdout)
    assert preparation["status"] == "succeeded"
    assert (preparation["summary"]["training_examples"], preparation["summary"]["validation_examples"]) == (
        21,
        5,
    )
    training = client.get(f"/v1/files/{preparation['training_file']}", headers=bearer(tenant_key)).json()
    assert training["purpose"] == "fine-tune"
    assert bad.exit_code != 0
    assert "nope" in bad.output
