"""Turning a validated job into a training run: read and check its files, then train.

The whole run (every step's metrics, the checkpoint snapshots, the memorised examples) is
computed once, when the job leaves ``validating_files``, and stored; the job's timeline then
reveals it step by step. Runs never change once stored, so they are cached in memory.
"""

from __future__ import annotations

import sqlite3
import threading

from emulator.jobs.records import JobError, JobRecord
from emulator.models.catalog import find_base_model
from emulator.store import Store
from emulator.tokens import Tokenizers
from emulator.training.dataset import MIN_TRAINING_EXAMPLES, DatasetError, Example, Format, parse_examples
from emulator.training.trainer import TrainingRun, resolve_hyperparameters, train


def _examples(
    store: Store, tokenizers: Tokenizers, *, file_id: str, fmt: Format, encoding: str, min_examples: int
) -> list[Example]:
    try:
        data = store.read_blob(file_id)
    except FileNotFoundError as exc:
        raise DatasetError("the file was deleted before the job could read it") from exc
    return parse_examples(
        data, fmt=fmt, encode=lambda text: tokenizers.encode(encoding, text), min_examples=min_examples
    )


def prepare_run(store: Store, tokenizers: Tokenizers, job: JobRecord) -> TrainingRun | JobError:
    """Validate the job's files and train; a ``JobError`` names the file and line at fault."""
    base = find_base_model(job.model)
    if base is None:  # refused at creation; kept for records written by another version
        return JobError(
            code="invalid_model", message=f"Model {job.model} cannot be fine-tuned.", param="model"
        )
    fmt: Format = "dpo" if job.method_type == "dpo" else base.kind
    try:
        examples = _examples(
            store,
            tokenizers,
            file_id=job.training_file,
            fmt=fmt,
            encoding=base.encoding,
            min_examples=MIN_TRAINING_EXAMPLES,
        )
    except DatasetError as exc:
        return JobError(
            code="invalid_training_file",
            message=f"Invalid training file {job.training_file}: {exc.message}.",
            param="training_file",
        )
    validation: list[Example] = []
    if job.validation_file:
        try:
            validation = _examples(
                store,
                tokenizers,
                file_id=job.validation_file,
                fmt=fmt,
                encoding=base.encoding,
                min_examples=1,
            )
        except DatasetError as exc:
            return JobError(
                code="invalid_validation_file",
                message=f"Invalid validation file {job.validation_file}: {exc.message}.",
                param="validation_file",
            )
    hyper = resolve_hyperparameters(job.hyperparameters, len(examples))
    return train(
        examples,
        validation,
        hyper,
        seed=job.seed,
        vocab_size=tokenizers.get(base.encoding).n_vocab,
        training_context=base.training_context,
    )


class RunCache:
    """Stored training runs, parsed once per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, TrainingRun] = {}

    def save(self, conn: sqlite3.Connection, job_id: str, run: TrainingRun) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO runs (job_id, plan) VALUES (?, ?)", (job_id, run.model_dump_json())
        )
        with self._lock:
            self._runs[job_id] = run

    def load(self, conn: sqlite3.Connection, job_id: str) -> TrainingRun | None:
        with self._lock:
            cached = self._runs.get(job_id)
        if cached is not None:
            return cached
        row = conn.execute("SELECT plan FROM runs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        run = TrainingRun.model_validate_json(row["plan"])
        with self._lock:
            self._runs[job_id] = run
        return run
