"""`ftm jobs`: create (and follow), follow, list, show, cancel, pause, resume, events, checkpoints,
metrics, evaluation."""

from __future__ import annotations

import time
from typing import Any

import click
import openai
from openai.types.fine_tuning import FineTuningJob
from rich.live import Live

from ftmcli.errors import ExitCode
from ftmcli.evals import comparison_rows
from ftmcli.follow import METRIC_FIELDS, Event, FollowState, event_line, sparkline
from ftmcli.output import Output, json_option, when
from ftmcli.state import current_state

POLL_S = 1.0


@click.group()
def jobs() -> None:
    """Fine-tuning jobs."""


def _interval_option(function: Any) -> Any:
    return click.option(
        "--interval",
        type=click.FloatRange(min=0.1),
        default=POLL_S,
        show_default=True,
        help="Seconds between polls.",
    )(function)


def _new_events(sdk: openai.OpenAI, state: FollowState) -> list[Event]:
    """Events newer than any seen: the listing is newest first, so stop at the first one seen."""
    fresh: list[Event] = []
    for event in sdk.fine_tuning.jobs.list_events(state.job_id, limit=100):
        if event.id in state.seen:
            break
        data = event.data if isinstance(event.data, dict) else {}
        fresh.append(
            Event(event.id, event.created_at, event.level, event.message, event.type or "message", data)
        )
    return state.apply_events(reversed(fresh))


def follow_job(job_id: str, out: Output, interval: float) -> None:
    """Watch `job_id` until it ends, then exit with the code its end maps to; Ctrl-C detaches."""
    sdk = current_state().connection().sdk
    state = FollowState(job_id)
    live = (
        Live(state.render(), console=out.console, refresh_per_second=4) if out.console.is_terminal else None
    )
    try:
        if live is not None and not out.as_json:
            live.start()
        while True:
            job = sdk.fine_tuning.jobs.retrieve(job_id)
            new = _new_events(sdk, state)
            state.apply_job(job.model_dump(mode="json"))
            if out.as_json:
                pass
            elif live is not None:
                live.update(state.render(), refresh=True)
            else:
                for event in new:
                    out.console.print(event_line(event))
            if state.finished:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        if live is not None:
            live.stop()
        out.note(f"detached; {job_id} runs on (`ftm jobs follow {job_id}` to watch it again)")
        click.get_current_context().exit(ExitCode.DETACHED)
    finally:
        if live is not None and live.is_started:
            live.stop()
    if out.as_json:
        out.json({**job.model_dump(mode="json"), "progress": state.summary()})
    elif live is None:
        out.console.print(
            f"{job_id} {state.status}" + (f": {job.fine_tuned_model}" if job.fine_tuned_model else "")
        )
        if state.error:
            out.console.print(state.error, markup=False)
    click.get_current_context().exit(state.exit_code)


@jobs.command("create")
@click.option("--model", required=True, help="The base model (or a fine-tuned model to continue from).")
@click.option("--training-file", required=True, help="A processed file id (file-…).")
@click.option("--validation-file", default=None, help="A processed file id for validation figures.")
@click.option("--suffix", default=None, help="Up to 64 characters added to the fine-tuned model's name.")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Training epochs (default: the provider's)."
)
@click.option(
    "--evaluation-file",
    default=None,
    help="Evaluate the fine-tuned model against its base model on this file's examples when the job "
    "succeeds (default: the validation file).",
)
@click.option("--no-evaluation", is_flag=True, help="No evaluation on success, even with a validation file.")
@click.option("--follow", is_flag=True, help="Then follow it to the end (exit code as for `jobs follow`).")
@_interval_option
@json_option
def create(
    model: str,
    training_file: str,
    validation_file: str | None,
    suffix: str | None,
    epochs: int | None,
    evaluation_file: str | None,
    no_evaluation: bool,
    follow: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Create a fine-tuning job."""
    out = Output(as_json=as_json)
    # No retries: a lost answer to a create must not become a second job.
    sdk = current_state().connection().sdk.with_options(max_retries=0)
    evaluation: dict[str, Any] = {"enabled": False} if no_evaluation else {}
    if evaluation_file:
        evaluation["file"] = evaluation_file
    job = sdk.fine_tuning.jobs.create(
        model=model,
        training_file=training_file,
        validation_file=validation_file or openai.omit,
        suffix=suffix or openai.omit,
        hyperparameters={"n_epochs": epochs} if epochs else openai.omit,
        extra_body={"evaluation": evaluation} if evaluation else None,
    )
    if follow:
        out.note(f"created {job.id}")
        follow_job(job.id, out, interval)
    elif as_json:
        out.json(job)
    else:
        out.console.print(job.id, markup=False)


@jobs.command("follow")
@click.argument("job_id")
@_interval_option
@json_option
def follow(job_id: str, interval: float, as_json: bool) -> None:
    """Follow a job live until it ends: exit 0 succeeded, 1 failed, 3 cancelled, 130 detached (Ctrl-C)."""
    follow_job(job_id, Output(as_json=as_json), interval)


def _show_job(out: Output, job: FineTuningJob) -> None:
    if out.as_json:
        out.json(job)
        return
    out.fields(
        [
            ("id", job.id),
            ("status", job.status),
            ("model", job.model),
            ("fine-tuned model", job.fine_tuned_model),
            ("training file", job.training_file),
            ("validation file", job.validation_file),
            ("epochs", job.hyperparameters.n_epochs if job.hyperparameters else None),
            ("trained tokens", job.trained_tokens),
            ("created", when(job.created_at)),
            ("finished", when(job.finished_at)),
            ("error", job.error.message if job.error and job.error.message else None),
        ]
    )


@jobs.command("list")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--status", default=None, help="Only jobs in this status (e.g. running, failed).")
@click.option("--model", default=None, help="Only jobs of this model.")
@click.option(
    "--metadata", "metadata", multiple=True, metavar="KEY=VALUE", help="Only jobs with this metadata."
)
@json_option
def list_jobs(
    limit: int, status: str | None, model: str | None, metadata: tuple[str, ...], as_json: bool
) -> None:
    """Your jobs, newest first; the filters combine."""
    out = Output(as_json=as_json)
    query: dict[str, object] = {"status": status, "model": model}
    for pair in metadata:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--metadata")
        query[f"metadata[{key}]"] = value
    extra = {name: value for name, value in query.items() if value is not None}
    listed = current_state().connection().sdk.fine_tuning.jobs.list(limit=limit, extra_query=extra).data
    if as_json:
        out.json({"data": listed})
        return
    out.table(
        None,
        ["id", "status", "model", "fine-tuned model", "created"],
        ([j.id, j.status, j.model, j.fine_tuned_model, when(j.created_at)] for j in listed),
    )


@jobs.command("show")
@click.argument("job_id")
@json_option
def show(job_id: str, as_json: bool) -> None:
    """One job."""
    _show_job(Output(as_json=as_json), current_state().connection().sdk.fine_tuning.jobs.retrieve(job_id))


@jobs.command("cancel")
@click.argument("job_id")
@json_option
def cancel(job_id: str, as_json: bool) -> None:
    """Cancel a job."""
    _show_job(Output(as_json=as_json), current_state().connection().sdk.fine_tuning.jobs.cancel(job_id))


@jobs.command("retry")
@click.argument("job_id")
@json_option
def retry(job_id: str, as_json: bool) -> None:
    """Retry a failed or cancelled job: a new job from the same request."""
    created = current_state().connection().request("POST", f"fine_tuning/jobs/{job_id}/retry")
    _show_job(Output(as_json=as_json), FineTuningJob.model_validate(created))


@jobs.command("pause")
@click.argument("job_id")
@json_option
def pause(job_id: str, as_json: bool) -> None:
    """Pause a running job."""
    _show_job(Output(as_json=as_json), current_state().connection().sdk.fine_tuning.jobs.pause(job_id))


@jobs.command("resume")
@click.argument("job_id")
@json_option
def resume(job_id: str, as_json: bool) -> None:
    """Resume a paused job."""
    _show_job(Output(as_json=as_json), current_state().connection().sdk.fine_tuning.jobs.resume(job_id))


@jobs.command("events")
@click.argument("job_id")
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@json_option
def events(job_id: str, limit: int, as_json: bool) -> None:
    """A job's latest events, oldest first."""
    out = Output(as_json=as_json)
    page = current_state().connection().sdk.fine_tuning.jobs.list_events(job_id, limit=limit).data
    listed = list(reversed(page))  # the API lists newest first
    if as_json:
        out.json({"data": listed})
        return
    out.table(None, ["time", "level", "message"], ([when(e.created_at), e.level, e.message] for e in listed))


def _loss(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@jobs.command("checkpoints")
@click.argument("job_id")
@json_option
def checkpoints(job_id: str, as_json: bool) -> None:
    """A job's checkpoints."""
    out = Output(as_json=as_json)
    listed = current_state().connection().sdk.fine_tuning.jobs.checkpoints.list(job_id, limit=100).data
    if as_json:
        out.json({"data": listed})
        return
    out.table(
        None,
        ["id", "step", "train loss", "valid loss", "model"],
        (
            [
                c.id,
                c.step_number,
                _loss(c.metrics.train_loss),
                _loss(c.metrics.valid_loss),
                c.fine_tuned_model_checkpoint,
            ]
            for c in listed
        ),
    )


@jobs.command("metrics")
@click.argument("job_id")
@json_option
def metrics(job_id: str, as_json: bool) -> None:
    """A job's figures by step (its events while it runs, its result file once it has one),
    and its training loss curve."""
    out = Output(as_json=as_json)
    rows = current_state().connection().get(f"fine_tuning/jobs/{job_id}/metrics")["data"]
    if as_json:
        out.json({"data": rows})
        return
    shown = [name for name in METRIC_FIELDS if any(row.get(name) is not None for row in rows)]
    out.table(
        None,
        [name.replace("_", " ") for name in shown],
        ([_figure(row.get(name)) for name in shown] for row in rows),
    )
    curve = [row["train_loss"] for row in rows if row.get("train_loss") is not None]
    if len(curve) > 1:
        out.console.print(f"train loss  {sparkline(curve)}  {curve[0]:.3f} → {curve[-1]:.3f}", markup=False)


def _figure(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


@jobs.command("evaluation")
@click.argument("job_id")
@json_option
def evaluation(job_id: str, as_json: bool) -> None:
    """A succeeded job's evaluation: its fine-tuned model against its base model on the validation
    examples, a table per criterion and the verdict."""
    out = Output(as_json=as_json)
    found = current_state().connection().get(f"fine_tuning/jobs/{job_id}/evaluation")
    if as_json:
        out.json(found)
        return
    out.fields(
        [
            ("status", found["status"]),
            ("fine-tuned model", found["fine_tuned_model"]),
            ("base model", found["base_model"]),
            ("examples", f"{found['items']} asked, {found['skipped_examples']} skipped ({found['file_id']})"),
            ("eval", found["eval_id"] or "-"),
        ]
    )
    if found.get("error"):
        out.note(f"failed: {found['error']['message']}")
    comparison = found.get("comparison")
    if comparison:
        out.table(
            None,
            ["criterion", "win/tie/loss", "mean diff", "95% CI", "p", "verdict"],
            comparison_rows(comparison),
        )
        out.note(f"verdict: {comparison['verdict']}")
