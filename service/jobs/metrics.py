"""A job's training figures as a series by step: what its metrics events said while it ran,
overlaid with its result file (`step_metrics.csv`) once it has one, which is authoritative; and
the full-validation figures its checkpoints carry."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.blobs.store import BlobNotFound, BlobStore
from service.jobs.models import JobCheckpointRow, JobEventRow, JobRow

FIELDS = (
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
# OpenAI's result file names the training accuracy differently from its events.
RESULT_COLUMNS = {"train_accuracy": "train_mean_token_accuracy"}
MAX_RESULT_BYTES = 64 * 1024 * 1024


def _figure(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and value.strip():
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _step(value: object) -> int | None:
    figure = _figure(value)
    return int(figure) if figure is not None and figure >= 1 else None


class Series:
    """Figures by step; a later source overrides an earlier one field by field."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, float | None]] = {}
        self.total_steps: int | None = None

    def add(self, figures: Mapping[str, Any], *, rename: Mapping[str, str] | None = None) -> None:
        step = _step(figures.get("step"))
        if step is None:
            return
        row = self.rows.setdefault(step, dict.fromkeys(FIELDS))
        for name, value in figures.items():
            field = (rename or {}).get(name, name)
            figure = _figure(value)
            if field in FIELDS and figure is not None:
                row[field] = figure
        total = _step(figures.get("total_steps"))
        if total is not None:
            self.total_steps = total

    def as_list(self) -> list[dict[str, Any]]:
        return [{"step": step, **self.rows[step]} for step in sorted(self.rows)]


def result_rows(content: Iterable[str]) -> Iterable[dict[str, str]]:
    """The rows of a `step_metrics.csv` result file (an unreadable one gives none)."""
    try:
        yield from csv.DictReader(content)
    except csv.Error:
        return


def job_metrics(session: Session, blobs: BlobStore, job: JobRow) -> Series:
    series = Series()
    events = session.scalars(
        select(JobEventRow.data)
        .where(JobEventRow.job_id == job.id, JobEventRow.type == "metrics")
        .order_by(JobEventRow.created_at, JobEventRow.id)
    )
    for data in events:
        if isinstance(data, dict):
            series.add(data)
    checkpoints = session.scalars(select(JobCheckpointRow).where(JobCheckpointRow.job_id == job.id))
    for checkpoint in checkpoints:
        series.add({**checkpoint.metrics, "step": checkpoint.step_number})
    for file_id in job.result_files or []:
        try:
            with blobs.open(file_id) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
                for row in result_rows(text):
                    series.add(row, rename=RESULT_COLUMNS)
        except BlobNotFound:
            continue
    return series
