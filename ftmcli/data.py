"""`ftm data prepare`: a CSV, TSV or JSON array becomes JSONL training (and validation) files, on
this machine, with the service's own preparation, validation and cost-estimate code; no service
is needed. The service's modules are imported when the command runs, not when `ftm` starts."""

from __future__ import annotations

import codecs
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ftmcli.errors import CliError, ExitCode
from ftmcli.output import Output, json_option
from ftmcli.state import current_state

if TYPE_CHECKING:
    from service.files.preparation import PreparationCreate, PreparationSummary
    from service.files.report import ValidationReport
    from service.jobs.schemas import JobEstimate

DEFAULT_MODELS = {"chat": "gpt-4o-mini-2024-07-18", "completion": "babbage-002"}
OPTION_OF_PARAM = {
    "validation_split": "--validation-split",
    "user_column": "--user-column",
    "assistant_column": "--assistant-column",
    "system_column": "--system-column",
    "prompt_column": "--prompt-column",
    "completion_column": "--completion-column",
    "add_separator": "--add-separator",
    "add_whitespace": "--add-whitespace",
    "add_stop": "--add-stop",
    "apply_advice": "--apply-advice",
    "separator": "--separator",
    "stop": "--stop",
}

REMOTE_POLL_S = 1.0


@click.group()
def data() -> None:
    """Data sets: prepare a CSV, TSV or JSON file for fine-tuning, locally."""


def _split(value: str) -> float | int:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        raise CliError(
            f"--validation-split must be a fraction (0.2) or a number of examples (20), not '{value}'",
            exit_code=ExitCode.USAGE,
        ) from None


def _escapes(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """`\\n`, `\\t` and the like as typed on a command line, read as the characters they stand for."""
    if value is None:
        return None
    try:
        return codecs.decode(value.encode("utf-8"), "unicode_escape").encode("latin-1").decode("utf-8")
    except (UnicodeError, ValueError):
        raise click.BadParameter(f"cannot read the escapes in {value!r}") from None


def validation_path(training: Path) -> Path:
    stem = training.stem.removesuffix("_train")
    return training.with_name(f"{stem}_validation.jsonl")


def _options(values: dict[str, Any]) -> PreparationCreate:
    from pydantic import ValidationError

    from service.files.preparation import PreparationCreate

    try:
        return PreparationCreate(**values)
    except ValidationError as error:
        first = error.errors()[0]
        param = str(first["loc"][0]) if first["loc"] else ""
        raise CliError(
            f"{OPTION_OF_PARAM.get(param, param)}: {first['msg']}", exit_code=ExitCode.USAGE
        ) from error


def _estimate(report: ValidationReport, model: str, epochs: int | None, training: Path) -> JobEstimate:
    from service.config import Settings
    from service.jobs.estimate import fill_from_report
    from service.jobs.schemas import JobEstimate
    from service.models.catalog import BASE_MODELS
    from service.models.prices import training_price

    estimate = JobEstimate(
        model=model,
        base_model=model,
        encoding=BASE_MODELS[model].encoding,
        training_file=str(training),
        n_epochs_auto=epochs is None,
        price_per_million_tokens=training_price(model, Settings().training_prices),
    )
    fill_from_report(estimate, report, model, epochs if epochs is not None else "auto")
    return estimate


@data.command("prepare")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "example_format",
    type=click.Choice(["chat", "completion"]),
    default="chat",
    show_default=True,
    help="Chat messages, or prompt-completion (babbage-002, davinci-002).",
)
@click.option("--user-column", default="user", show_default=True, help="chat: the user's turn.")
@click.option("--assistant-column", default="assistant", show_default=True, help="chat: the answer.")
@click.option("--system-column", default=None, help="chat: a column with each row's system prompt.")
@click.option("--system", "system_prompt", default=None, help="chat: the system message of every example.")
@click.option("--prompt-column", default="prompt", show_default=True, help="completion: the prompt.")
@click.option(
    "--completion-column", default="completion", show_default=True, help="completion: the completion."
)
@click.option(
    "--validation-split",
    default="0",
    show_default=True,
    help="A fraction (0.2) or a number of examples (20).",
)
@click.option(
    "--seed", type=click.IntRange(0, 2**31 - 1), default=None, help="The split's seed (chosen if absent)."
)
@click.option("--dedup/--no-dedup", default=True, show_default=True, help="Drop exact duplicate examples.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The training file [FILE_train.jsonl].",
)
@click.option(
    "--model", default=None, help="Estimate for this base model [gpt-4o-mini-2024-07-18 | babbage-002]."
)
@click.option("--epochs", type=click.IntRange(1, 50), default=None, help="Epochs for the estimate [auto].")
@click.option("--add-separator", is_flag=True, help="completion: end every prompt with the separator.")
@click.option("--add-whitespace", is_flag=True, help="completion: start every completion with a space.")
@click.option("--add-stop", is_flag=True, help="completion: end every completion with the stop sequence.")
@click.option("--apply-advice", is_flag=True, help="completion: apply all the advice the data calls for.")
@click.option(
    "--separator",
    default=None,
    callback=_escapes,
    help="completion: the separator, with \\n escapes [suggested].",
)
@click.option(
    "--stop",
    default=None,
    callback=_escapes,
    help="completion: the stop sequence, with \\n escapes [suggested].",
)
@click.option(
    "--remote",
    is_flag=True,
    help="Prepare in the service instead: upload FILE as `user_data` and make fine-tuning files there.",
)
@json_option
def prepare(
    path: Path,
    example_format: str,
    validation_split: str,
    dedup: bool,
    output: Path | None,
    model: str | None,
    epochs: int | None,
    remote: bool,
    as_json: bool,
    **mapping: Any,
) -> None:
    """Turn FILE (.csv, .tsv, .json array of objects) into JSONL fine-tuning files and print the
    report: examples, token statistics, warnings, the cost estimate and, for prompt-completion
    data, the advice of OpenAI's old data-preparation tool. Exit 1 when the data has problems."""
    from service.errors import ServiceError
    from service.files.preparation import PreparationFailed
    from service.files.preparation import prepare as run_preparation
    from service.files.sources import source_format_of
    from service.files.validation import validate_jsonl
    from service.models.catalog import BASE_MODELS

    out = Output(as_json=as_json)
    kind = source_format_of(path.name)
    if kind is None:
        raise CliError(f"{path.name}: name a .csv, .tsv or .json file", exit_code=ExitCode.USAGE)
    model = model or DEFAULT_MODELS[example_format]
    if model not in BASE_MODELS:
        raise CliError(f"--model: choose one of {', '.join(BASE_MODELS)}", exit_code=ExitCode.USAGE)
    options = _options(
        {
            "format": example_format,
            "validation_split": _split(validation_split),
            "deduplicate": dedup,
            **mapping,
        }
    )
    if remote:
        _prepare_remotely(out, path, options)
        return
    training_path = output or path.with_name(f"{path.stem}_train.jsonl")
    validation_file = validation_path(training_path)
    with tempfile.TemporaryDirectory(dir=training_path.parent) as scratch:
        training_tmp, validation_tmp = Path(scratch, "train"), Path(scratch, "validation")
        try:
            with training_tmp.open("wb") as training, validation_tmp.open("wb") as validation:
                summary = run_preparation(
                    lambda: path.open("rb"), kind, options, training=training, validation=validation
                )
        except PreparationFailed as failed:
            _show_problems(out, path, failed)
            click.get_current_context().exit(ExitCode.FAILED)
        except ServiceError as error:
            option = OPTION_OF_PARAM.get(error.param or "", error.param or "")
            raise CliError(f"{option}: {error.message}", exit_code=ExitCode.USAGE) from error
        training_tmp.replace(training_path)
        if summary.validation_examples:
            validation_tmp.replace(validation_file)
    with training_path.open("rb") as lines:
        training_report = validate_jsonl(lines)
    validation_report = None
    if summary.validation_examples:
        with validation_file.open("rb") as lines:
            validation_report = validate_jsonl(lines)
    estimate = _estimate(training_report, model, epochs, training_path)
    files = {
        "training_file": str(training_path),
        "validation_file": str(validation_file) if validation_report else None,
    }
    if as_json:
        out.json(
            {
                **files,
                "summary": summary,
                "training_report": training_report,
                "validation_report": validation_report,
                "estimate": estimate,
            }
        )
    else:
        _show(out, summary, files, training_report, validation_report, estimate)
    if not training_report.ok or (validation_report is not None and not validation_report.ok):
        click.get_current_context().exit(ExitCode.FAILED)


def _show_problems(out: Output, path: Path, failed: Any) -> None:
    if out.as_json:
        out.json(
            {
                "error": failed.summary(),
                "problem_count": failed.count,
                "problems": [
                    {"row": p.row, "column": p.column, "category": p.category, "message": p.message}
                    for p in failed.problems
                ],
            }
        )
        return
    out.table(
        f"{path.name}: {failed.count} problem{'s' if failed.count != 1 else ''}; nothing was written",
        ["row", "column", "problem"],
        ([p.row or "-", p.column or "", p.message] for p in failed.problems),
    )
    if failed.count > len(failed.problems):
        out.note(f"… and {failed.count - len(failed.problems)} more")


def _show(
    out: Output,
    summary: PreparationSummary,
    files: dict[str, str | None],
    training: ValidationReport,
    validation: ValidationReport | None,
    estimate: JobEstimate,
) -> None:
    out.fields(
        [
            ("read", f"{summary.rows} rows ({summary.source_format})"),
            ("examples", f"{summary.examples} {summary.format} examples"),
            ("duplicates removed", summary.duplicates_removed or "none"),
            ("training", f"{summary.training_examples} examples -> {files['training_file']}"),
            (
                "validation",
                f"{summary.validation_examples} examples -> {files['validation_file']}"
                if files["validation_file"]
                else "none",
            ),
            ("seed", summary.seed),
        ]
    )
    for name, report in (("training", training), ("validation", validation)):
        if report is None:
            continue
        if report.error_count:
            out.table(
                f"{name} file: {report.error_count} errors",
                ["line", "category", "problem"],
                ([e.line or "-", e.category, e.message] for e in report.errors),
            )
        if report.warning_count:
            out.table(
                f"{name} file: {report.warning_count} warnings",
                ["category", "count", "first lines"],
                (
                    [category, counted.count, ", ".join(map(str, counted.lines))]
                    for category, counted in report.warning_categories.items()
                ),
            )
    stats = training.tokens.get(estimate.encoding)
    if stats is not None and stats.example_tokens is not None:
        out.table(
            f"tokens per example ({stats.encoding})",
            ["", "min", "p5", "median", "mean", "p95", "max", "total"],
            [
                ["example", *_distribution(stats.example_tokens), stats.total_tokens],
                ["trained", *_distribution(stats.assistant_tokens), stats.trained_tokens],
            ],
        )
    cost = (
        f"${estimate.estimated_cost_usd:.4f}" if estimate.estimated_cost_usd is not None else "no price known"
    )
    epochs = f"{estimate.n_epochs}{' (auto)' if estimate.n_epochs_auto else ''}"
    out.fields(
        [
            ("estimate", f"{estimate.model}, {epochs} epochs"),
            (
                "billed tokens",
                f"{estimate.billed_tokens_per_epoch} per epoch, {estimate.total_billed_tokens} in all",
            ),
            ("cost", cost),
        ]
    )
    for warning in estimate.warnings:
        out.console.print(f"warning: {warning}", markup=False)
    for advice in summary.advice:
        mark = "applied" if advice.applied else "advice"
        out.console.print(f"{mark}: {advice.message}", markup=False)


def _distribution(values: Any) -> list[str]:
    if values is None:
        return [""] * 6
    return [f"{getattr(values, name):g}" for name in ("min", "p5", "median", "mean", "p95", "max")]


def _prepare_remotely(out: Output, path: Path, options: PreparationCreate) -> None:
    """Upload the source, ask the service to prepare it (`POST /v1/files/{id}/preparations`), wait
    for a worker if it is large, and print the preparation: the files made, or the bad row."""
    connection = current_state().connection()
    with path.open("rb") as handle:
        source = connection.sdk.files.create(file=(path.name, handle), purpose="user_data")
    body = options.model_dump(mode="json", exclude_defaults=True)
    preparation = connection.request("POST", f"files/{source.id}/preparations", body=body)
    while preparation["status"] == "queued":
        time.sleep(REMOTE_POLL_S)
        preparation = connection.get(f"preparations/{preparation['id']}")
    if out.as_json:
        out.json(preparation)
    elif preparation["status"] == "succeeded":
        out.fields(
            [
                ("preparation", preparation["id"]),
                ("source", preparation["source_file_id"]),
                ("training file", preparation["training_file"]),
                ("validation file", preparation.get("validation_file") or "-"),
            ]
        )
    else:
        error = preparation.get("error") or {}
        out.note(f"preparation {preparation['id']} failed: {error.get('message', 'unknown error')}")
    if preparation["status"] != "succeeded":
        click.get_current_context().exit(ExitCode.FAILED)
