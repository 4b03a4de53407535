"""`ftm evals`: create an eval of question/answer items, run it over a JSONL file of items with a
model (and wait for it), and compare two runs as a table
(`/v1/evals/{eval_id}/runs/{run_id}/compare/{other_run_id}`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from ftmcli.errors import CliError, ExitCode
from ftmcli.output import Output, json_option
from ftmcli.state import current_state

FINAL = ("completed", "failed", "canceled")


def read_items(path: Path) -> list[dict[str, Any]]:
    """`{"item": {...}}` rows (a bare object is taken as the item); a bad line is a usage error naming it."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise CliError(f"{path}: line {number} is not JSON", exit_code=ExitCode.USAGE) from None
        if not isinstance(value, dict):
            raise CliError(f"{path}: line {number} is not a JSON object", exit_code=ExitCode.USAGE)
        rows.append(value if isinstance(value.get("item"), dict) else {"item": value})
    if not rows:
        raise CliError(f"{path} holds no items", exit_code=ExitCode.USAGE)
    return rows


def _number(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def comparison_rows(comparison: dict[str, Any]) -> list[list[str]]:
    return [
        [
            c["testing_criteria"],
            f"{c['wins']}/{c['ties']}/{c['losses']}",
            _number(c["mean_difference"], sign=True),
            f"{_number(c['ci_low'], sign=True)} .. {_number(c['ci_high'], sign=True)}",
            f"{c['p_value']:.3g}",
            c["verdict"],
        ]
        for c in comparison["criteria"]
    ]


@click.group()
def evals() -> None:
    """Evaluate models on your items, and compare two runs."""


def default_criteria(rouge_threshold: float, exact: bool) -> list[dict[str, Any]]:
    """ROUGE-L of the sample against `item.answer`, and with `exact` a string equality check."""
    criteria: list[dict[str, Any]] = [
        {
            "type": "text_similarity",
            "name": "rouge_l",
            "input": "{{sample.output_text}}",
            "reference": "{{item.answer}}",
            "evaluation_metric": "rouge_l",
            "pass_threshold": rouge_threshold,
        }
    ]
    if exact:
        criteria.append(
            {
                "type": "string_check",
                "name": "exact",
                "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}",
                "operation": "eq",
            }
        )
    return criteria


@evals.command("create")
@click.option("--name", required=True, help="The eval's name.")
@click.option(
    "--criteria",
    "criteria_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A JSON file with the testing criteria (OpenAI's shapes); default: ROUGE-L against item.answer.",
)
@click.option("--rouge-threshold", default=0.6, show_default=True, help="The default criterion's pass mark.")
@click.option("--exact", is_flag=True, help="Also check the sample equals item.answer exactly.")
@json_option
def create(name: str, criteria_path: Path | None, rouge_threshold: float, exact: bool, as_json: bool) -> None:
    """Create an eval of items with a `question` and an `answer` (more fields are allowed)."""
    out = Output(as_json=as_json)
    if criteria_path is not None:
        try:
            criteria = json.loads(criteria_path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise CliError(f"{criteria_path}: not JSON ({error})", exit_code=ExitCode.USAGE) from None
    else:
        criteria = default_criteria(rouge_threshold, exact)
    schema = {
        "type": "object",
        "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["question", "answer"],
    }
    config: Any = {"type": "custom", "item_schema": schema, "include_sample_schema": True}
    created = (
        current_state()
        .connection()
        .sdk.evals.create(name=name, data_source_config=config, testing_criteria=criteria)
    )
    if as_json:
        out.json(created.model_dump(mode="json"))
        return
    out.fields([("eval", created.id), ("name", created.name), ("criteria", str(len(criteria)))])


@evals.command("list")
@json_option
def list_evals(as_json: bool) -> None:
    """Your evals."""
    out = Output(as_json=as_json)
    listed = current_state().connection().sdk.evals.list(limit=100).data
    if as_json:
        out.json({"data": [e.model_dump(mode="json") for e in listed]})
        return
    out.table(
        None, ["id", "name", "criteria"], ([e.id, e.name, str(len(e.testing_criteria))] for e in listed)
    )


@evals.command("run")
@click.argument("eval_id")
@click.option("--model", required=True, help="A base model, your fine-tuned model, or a deployment.")
@click.option(
    "--items", "items_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--prompt", default="{{item.question}}", show_default=True, help="The user message template.")
@click.option("--name", default=None, help="The run's name.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the run finishes.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between checks while waiting.")
@json_option
def run(
    eval_id: str,
    model: str,
    items_path: Path,
    prompt: str,
    name: str | None,
    wait: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Sample MODEL on each item of a JSONL file and grade it by the eval's criteria."""
    out = Output(as_json=as_json)
    sdk = current_state().connection().sdk
    source: Any = {
        "type": "completions",
        "model": model,
        "source": {"type": "file_content", "content": read_items(items_path)},
        "input_messages": {"type": "template", "template": [{"role": "user", "content": prompt}]},
    }
    created = sdk.evals.runs.create(eval_id, data_source=source, name=name or f"{model} run")
    current: Any = created
    while wait and current.status not in FINAL:
        time.sleep(interval)
        current = sdk.evals.runs.retrieve(created.id, eval_id=eval_id)
    if as_json:
        out.json(current.model_dump(mode="json"))
        return
    counts = current.result_counts
    out.fields(
        [
            ("run", current.id),
            ("model", current.model),
            ("status", current.status),
            (
                "items",
                f"{counts.total}: {counts.passed} passed, {counts.failed} failed, {counts.errored} errored",
            ),
        ]
    )
    if current.status == "failed":
        raise CliError(f"run {current.id} failed: {current.error.message}", exit_code=ExitCode.FAILED)


@evals.command("runs")
@click.argument("eval_id")
@json_option
def runs(eval_id: str, as_json: bool) -> None:
    """An eval's runs, with their models and counts."""
    out = Output(as_json=as_json)
    listed = current_state().connection().sdk.evals.runs.list(eval_id, limit=100).data
    if as_json:
        out.json({"data": [run.model_dump(mode="json") for run in listed]})
        return
    out.table(
        None,
        ["run", "model", "status", "passed", "failed", "errored"],
        (
            [r.id, r.model, r.status, r.result_counts.passed, r.result_counts.failed, r.result_counts.errored]
            for r in listed
        ),
    )


@evals.command("items")
@click.argument("eval_id")
@click.argument("run_id")
@click.option(
    "--status", type=click.Choice(["pass", "fail"]), default=None, help="Only passed or failed items."
)
@json_option
def items(eval_id: str, run_id: str, status: str | None, as_json: bool) -> None:
    """A run's items: the sample each got and its grades."""
    out = Output(as_json=as_json)
    sdk = current_state().connection().sdk
    extra: Any = {"status": status} if status else {}
    listed = sdk.evals.runs.output_items.list(run_id, eval_id=eval_id, limit=100, **extra).data
    if as_json:
        out.json({"data": [item.model_dump(mode="json") for item in listed]})
        return
    out.table(
        None,
        ["item", "status", "answer", "grades"],
        (
            [
                item.id,
                item.status,
                (item.sample.output[0].content or "")[:60] if item.sample.output else "",
                ", ".join(f"{r.name} {r.score:.2f}" for r in item.results),
            ]
            for item in listed
        ),
    )


@evals.command("compare")
@click.argument("eval_id")
@click.argument("candidate_run")
@click.argument("baseline_run")
@click.option("--seed", default=0, show_default=True, help="The bootstrap's seed.")
@json_option
def compare(eval_id: str, candidate_run: str, baseline_run: str, seed: int, as_json: bool) -> None:
    """Compare CANDIDATE_RUN with BASELINE_RUN item by item: a table per criterion and a verdict."""
    out = Output(as_json=as_json)
    comparison = (
        current_state()
        .connection()
        .get(f"evals/{eval_id}/runs/{candidate_run}/compare/{baseline_run}", params={"seed": str(seed)})
    )
    if as_json:
        out.json(comparison)
        return
    title = f"{comparison['candidate_model']} vs {comparison['baseline_model']} ({comparison['shared_items']} items)"
    out.table(
        title,
        ["criterion", "win/tie/loss", "mean diff", "95% CI", "p", "verdict"],
        comparison_rows(comparison),
    )
    out.note(f"verdict: {comparison['verdict']}")
