"""What a training run leaves behind: checkpoints, the fine-tuned model and the result file."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

from emulator.files.service import RESULTS_PURPOSE, insert_file
from emulator.ids import new_id
from emulator.jobs.records import JobRecord
from emulator.store import Store
from emulator.training.trainer import StepMetrics, TrainingRun

RESULT_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")


def results_csv(steps: list[StepMetrics]) -> bytes:
    """The ``step_metrics.csv`` result file: one row per step, empty cells where not computed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    for m in steps:
        valid = (
            "" if m.valid_loss is None else m.valid_loss,
            "" if m.valid_mean_token_accuracy is None else m.valid_mean_token_accuracy,
        )
        writer.writerow((m.step, m.train_loss, m.train_mean_token_accuracy, *valid))
    return out.getvalue().encode()


def checkpoint_metrics(m: StepMetrics) -> dict[str, float | None]:
    return {
        "step": float(m.step),
        "train_loss": m.train_loss,
        "train_mean_token_accuracy": m.train_mean_token_accuracy,
        "valid_loss": m.valid_loss,
        "valid_mean_token_accuracy": m.valid_mean_token_accuracy,
        "full_valid_loss": m.full_valid_loss,
        "full_valid_mean_token_accuracy": m.full_valid_mean_token_accuracy,
    }


def _insert_model(
    conn: sqlite3.Connection, *, name: str, job: JobRecord, created_at: int, step: int | None, listed: bool
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO models (id, job_id, created_at, owned_by, base_model, step, listed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (name, job.id, created_at, job.organization_id, job.model, step, int(listed)),
    )


def record_checkpoint(
    conn: sqlite3.Connection, job: JobRecord, run: TrainingRun, step: int, at: float
) -> None:
    """A ``fine_tuning.job.checkpoint`` at ``step``, callable as ``{model}:ckpt-step-{step}``."""
    name = f"{job.planned_model}:ckpt-step-{step}"
    conn.execute(
        "INSERT INTO checkpoints (id, job_id, created_at, step, model, metrics) VALUES (?, ?, ?, ?, ?, ?)",
        (new_id("ftckpt_"), job.id, int(at), step, name, json.dumps(checkpoint_metrics(run.steps[step - 1]))),
    )
    _insert_model(conn, name=name, job=job, created_at=int(at), step=step, listed=False)


def record_success(
    conn: sqlite3.Connection, store: Store, job: JobRecord, run: TrainingRun, at: float
) -> None:
    """Create the fine-tuned model and the result file, and mark the job succeeded."""
    results = insert_file(
        conn,
        store,
        filename="step_metrics.csv",
        purpose=RESULTS_PURPOSE,
        data=results_csv(run.steps),
        created_at=int(at),
    )
    _insert_model(conn, name=job.planned_model, job=job, created_at=int(at), step=None, listed=True)
    job.status = "succeeded"
    job.fine_tuned_model = job.planned_model
    job.trained_tokens = run.trained_tokens
    job.finished_at = int(at)
    job.result_files = [results["id"]]
